"""The README's catalog table is generated from the install judgement and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT
from visionatrix.flows import catalog_table

README = ROOT / "README.md"


def test_the_readme_table_is_current() -> None:
    assert catalog_table.main(["--check", str(README)]) == 0, f"run: {catalog_table.COMMAND}"


def test_the_table_says_which_flows_run_and_why_the_others_do_not() -> None:
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in catalog_table.markdown_table().splitlines()
        if "| `" in line
    }
    assert len(rows) == 53
    assert "| yes |" in rows["sdxl_lighting"] and "| no |" in rows["hunyuan_dit"]
    assert "is Hunyuan-DiT, but this node loads only " in rows["hunyuan_dit"]
    assert catalog_table._cell("SaveText|pysssss") == "SaveText\\|pysssss", "a | inside a cell is escaped"


def test_a_stale_table_is_caught_and_rewritten(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"intro\n{catalog_table.BEGIN}\n| old |\n{catalog_table.END}\noutro\n")
    assert catalog_table.main(["--check", str(stale)]) == 1
    assert catalog_table.main([str(stale)]) == 0
    text = stale.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "| old |" not in text
    assert catalog_table.main(["--check", str(stale)]) == 0


def test_a_readme_without_markers_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no table here\n")
    with pytest.raises(ValueError, match="markers"):
        catalog_table.main([str(tmp_path / "README.md")])
