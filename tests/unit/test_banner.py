"""The lines `visionatrix run` prints once it listens: each mode says where it is and what next."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionatrix.cli.banner import CLI_ENV, banner
from visionatrix.config import Config, Mode


def _rows(text: str) -> dict[str, str]:
    lines = text.splitlines()
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in lines[2 : lines.index("Next:")]}


def test_server_mode_names_auth_the_database_without_its_password_and_remote_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CLI_ENV, raising=False)
    config = Config(
        mode=Mode.SERVER,
        host="0.0.0.0",
        port=9000,
        database_uri="postgresql://vix:s3cret@db.example/vix",
        base_data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
    )
    text = banner(config, ["sdxl_lighting"], local_workers=0)
    assert "http://localhost:9000/" in text.splitlines()[1]
    rows = _rows(text)
    assert rows["mode"].startswith("SERVER") and "auth" in rows["mode"]
    assert rows["database"] == "postgresql+asyncpg://vix:***@db.example/vix" and "s3cret" not in text
    assert rows["data"] == str(tmp_path / "data") and rows["models"] == str(tmp_path / "models")
    assert rows["flows"] == "sdxl_lighting"
    assert "--mode WORKER --server URL" in rows["workers"] and "WORKER_AUTH" in rows["workers"]
    assert "visionatrix task run sdxl_lighting --user NAME --password PASSWORD" in text
    assert "Ctrl+C" not in text  # a service is stopped by its supervisor


def test_default_mode_without_flows_points_to_the_demo_with_the_command_that_started_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CLI_ENV, "scripts/serve")
    config = Config(database_uri="", base_data_dir=tmp_path, models_dir=tmp_path)
    text = banner(config, [], local_workers=2)
    rows = _rows(text)
    assert rows["flows"] == "none installed yet" and rows["workers"].startswith("2 local workers")
    assert rows["database"].startswith("SQLite file ") and rows["database"].endswith("visionatrix.db")
    assert "scripts/serve demo" in text and "noise" in text and "scripts/serve install-flow NAME" in text
