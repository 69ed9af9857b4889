"""``python -m visionatrix.testing.tiny_models``: which files a flow needs, under which names, in which
layout; what it skips and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from visionatrix.models.architecture import file_kind
from visionatrix.testing.tiny_models import DEFAULT_FLOWS, WRITERS, flow_graphs, plan

pytest.importorskip("torch", reason="writing tiny models needs the worker extra (torch)")


def planned(*flows: str) -> dict[str, str]:
    return {p.entry.relpath: p.skipped for p in plan(flow_graphs(flows))}


def test_the_default_flows_need_the_original_four_files() -> None:
    assert planned(*DEFAULT_FLOWS) == {
        "checkpoints/sdxl_lightning_8step.safetensors": "",
        "checkpoints/sdxl_lightning_4step.safetensors": "",
        "birefnet/General.safetensors": "",
        "birefnet/General-Lite.safetensors": "",
    }


def test_files_the_engine_cannot_load_are_skipped_with_the_reason() -> None:
    assert planned("juggernaut_xl", "remove_background_bria", "hunyuan_dit") == {
        "checkpoints/Juggernaut-X-RunDiffusion-NSFW.safetensors": "",
        "vae/sdxl_vae.safetensors": "read by VAELoader, which loads nothing here yet",
        "loras/add-detail-xl.safetensors": "read by LoraLoader, which loads nothing here yet",
        "birefnet/bria-rmbg-2.safetensors": "rmbg-2.0: no node here loads it yet",
        "checkpoints/hunyuan_dit_1.2.safetensors": "hunyuan-dit: no node here loads it yet",
    }


def test_every_writer_is_for_an_architecture_some_node_loads() -> None:
    from visionatrix.engine import registry
    from visionatrix.engine.model_inputs import model_inputs

    loadable = {k for c in registry.known_classes() for m in model_inputs(c).values() for k in m.kinds}
    assert set(WRITERS) <= loadable


def test_the_cli_writes_a_flows_files_under_the_catalog_names(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "visionatrix.testing.tiny_models",
            "--out",
            str(tmp_path),
            "--flow",
            "animagine_xl",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    written = tmp_path / "checkpoints" / "animagine-xl-4.0-opt.safetensors"
    assert done.stdout.startswith(str(written)) and "MB)" in done.stdout
    assert file_kind(written) == "sdxl", "the published SDXL layout, as the header shows"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "checkpoints/animagine-xl-4.0-opt.safetensors"
    ]


def test_an_unknown_flow_is_an_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "visionatrix.testing.tiny_models", "--out", str(tmp_path), "--flow", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "'nope' is neither in the catalog nor a file" in done.stderr
