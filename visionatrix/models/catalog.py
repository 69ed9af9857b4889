"""The model catalog: which weight file a flow's loader node needs, where it lives, where to get it.

The catalog is Visionatrix's ``models_catalog.json``: a mapping of entry name to
``{regexes: [{class_name?, input_name?, input_value?}], url, hash (sha256), types, filename, ...}``.
A graph needs an entry when one of its nodes has a string input that satisfies every field of
one of the entry's regexes (``re.match``, as Visionatrix does; ``class_name`` must match the
whole ``class_type``).

Where the file goes: ``MODELS_DIR/<types[0]>/<filename>``; ``filename`` defaults to the last
part of the URL path. An entry without ``types`` names its path relative to ``MODELS_DIR``
(Visionatrix: relative to the ComfyUI folder). Older catalogs spell the two as one ``save_path``.

What architecture an entry's file holds (``ModelEntry.kind``, see ``models.architecture``): an
``architecture`` field of the entry (this project's extension), else ``builtin/model_architectures.json``
by entry name, else by sha256 (so a remote catalog that renames an entry keeps it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

from visionatrix.errors import InvalidInput

log = logging.getLogger(__name__)

BUILTIN_CATALOG = "models_catalog.json"
BUILTIN_KINDS = "model_architectures.json"

# A regex without ``class_name`` would otherwise fire on any text that happens to mention a model
# (a flow's homepage URL, a SaveImage prefix): such rules only look at values shaped like weight files.
MODEL_FILE_SUFFIXES = frozenset(
    {".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".onnx", ".gguf", ".pkl", ".tflite"}
)


@dataclass(frozen=True)
class MatchRule:
    """One element of an entry's ``regexes``: every present field must match."""

    class_name: re.Pattern[str] | None
    input_name: re.Pattern[str] | None
    input_value: re.Pattern[str] | None

    def matches(self, class_type: str, input_name: str, value: str) -> bool:
        if self.class_name is None and not looks_like_model_file(value):
            return False
        return (
            (self.class_name is None or self.class_name.fullmatch(class_type) is not None)
            and (self.input_name is None or self.input_name.match(input_name) is not None)
            and (self.input_value is None or self.input_value.match(value) is not None)
        )


@dataclass(frozen=True)
class ModelEntry:
    name: str
    url: str
    folder: str  # under MODELS_DIR; "" when ``filename`` is a path relative to MODELS_DIR itself
    filename: str
    hash: str = ""  # sha256, lower-case hex; "" = not verifiable
    file_size: int | None = None
    homepage: str = ""
    gated: bool = False
    types: tuple[str, ...] = ()
    rules: tuple[MatchRule, ...] = ()
    kind: str | None = None  # the architecture of the file, when the catalog knows it

    def with_kind(self, kind: str | None) -> ModelEntry:
        return replace(self, kind=kind)

    @property
    def relpath(self) -> str:
        """Path under MODELS_DIR, with forward slashes."""
        return str(PurePosixPath(self.folder, self.filename)) if self.folder else self.filename

    def target(self, models_dir: Path) -> Path:
        return models_dir.joinpath(*self.relpath.split("/"))

    def matches(self, class_type: str, input_name: str, value: str) -> bool:
        return any(rule.matches(class_type, input_name, value) for rule in self.rules)


@lru_cache(maxsize=4096)  # asked once per catalog entry for each input of a graph
def looks_like_model_file(value: str) -> bool:
    if "://" in value or "\n" in value:
        return False
    return PurePosixPath(value.replace("\\", "/")).suffix.lower() in MODEL_FILE_SUFFIXES


@dataclass(frozen=True)
class ModelUse:
    """One node input of a graph that names a catalog entry's file."""

    node_id: str
    class_type: str
    input_name: str
    value: str
    entry: ModelEntry


def graph_uses(graph: Mapping[str, Any], catalog: Mapping[str, ModelEntry]) -> list[ModelUse]:
    """Every (node input, catalog entry) match of a ComfyUI API graph, in graph order.

    An input may match several entries (Visionatrix's IP-Adapter presets need two files), and an
    entry may serve several inputs.
    """
    uses = []
    for node_id, node in graph.items():
        if not isinstance(node, Mapping):
            continue
        class_type = str(node.get("class_type", ""))
        for input_name, value in _string_inputs(node):
            uses.extend(
                ModelUse(str(node_id), class_type, input_name, value, entry)
                for entry in catalog.values()
                if entry.matches(class_type, input_name, value)
            )
    return uses


def match_graph(graph: Mapping[str, Any], catalog: Mapping[str, ModelEntry]) -> list[ModelEntry]:
    """The catalog entries a ComfyUI API graph needs, in order of first use, each once."""
    found: dict[str, ModelEntry] = {}
    for use in graph_uses(graph, catalog):
        found.setdefault(use.entry.name, use.entry)
    return list(found.values())


def _string_inputs(node: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    inputs = node.get("inputs")
    if not isinstance(inputs, Mapping):
        return ()
    return ((str(k), v) for k, v in inputs.items() if isinstance(v, str) and v and v != "None")


def parse_catalog(data: Mapping[str, Any], *, strict: bool = False) -> dict[str, ModelEntry]:
    """Entries from a decoded ``models_catalog.json``.

    A rule whose regex does not compile is dropped with a warning, so one bad line of someone
    else's catalog does not take down every flow; ``strict=True`` raises ``InvalidInput`` instead.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("models catalog: expected a JSON object of entry name -> details")
    return {name: entry_from_dict(name, details, strict=strict) for name, details in data.items()}


def entry_from_dict(name: str, details: Mapping[str, Any], *, strict: bool = False) -> ModelEntry:
    url = str(details.get("url") or "")
    folder, filename = _placement(name, details, url)
    types = details.get("types") or ()
    return ModelEntry(
        name=name,
        url=url,
        folder=folder,
        filename=filename,
        hash=str(details.get("hash") or "").lower(),
        file_size=int(details["file_size"]) if details.get("file_size") else None,
        homepage=str(details.get("homepage") or ""),
        gated=bool(details.get("gated", False)),
        types=tuple(str(t) for t in types),
        rules=tuple(_rules(name, details.get("regexes") or (), strict)),
        kind=str(details["architecture"]) if details.get("architecture") else None,
    )


def _placement(name: str, details: Mapping[str, Any], url: str) -> tuple[str, str]:
    if details.get("save_path"):
        first, _, rest = str(details["save_path"]).partition("/")
        return (first, rest) if rest else ("", first)
    filename = str(details.get("filename") or PurePosixPath(urlparse(url).path).name)
    if not filename:
        raise InvalidInput(f"models catalog entry {name!r}: no filename and none in its url {url!r}")
    types = details.get("types") or ()
    return (str(types[0]) if types else "", filename)


def _rules(name: str, regexes: Iterable[Mapping[str, str]], strict: bool) -> Iterable[MatchRule]:
    for raw in regexes:
        try:
            yield MatchRule(
                class_name=_compile(raw.get("class_name")),
                input_name=_compile(raw.get("input_name")),
                input_value=_compile(raw.get("input_value")),
            )
        except re.error as exc:
            message = f"models catalog entry {name!r}: regex {raw!r} does not compile: {exc}"
            if strict:
                raise InvalidInput(message) from exc
            log.warning(message)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def load_catalog(path: Path, *, strict: bool = False) -> dict[str, ModelEntry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read models catalog {path}: {exc}") from exc
    return parse_catalog(data, strict=strict)


def builtin_catalog_path() -> Path:
    return Path(str(resources.files("visionatrix").joinpath("builtin", BUILTIN_CATALOG)))


def load_builtin_catalog(*, strict: bool = False) -> dict[str, ModelEntry]:
    """The catalog shipped with the package (Visionatrix's, plus the entries this project adds)."""
    return with_kinds(load_catalog(builtin_catalog_path(), strict=strict))


@cache
def builtin_kinds() -> Mapping[str, str]:
    """Entry name -> architecture, as ``builtin/model_architectures.json`` records them."""
    path = resources.files("visionatrix").joinpath("builtin", BUILTIN_KINDS)
    return MappingProxyType(dict(json.loads(path.read_text(encoding="utf-8"))["kinds"]))


@cache
def _builtin_kinds_by_hash() -> Mapping[str, str]:
    shipped = load_catalog(builtin_catalog_path())
    kinds = builtin_kinds()
    return MappingProxyType(
        {shipped[n].hash: k for n, k in kinds.items() if n in shipped and shipped[n].hash}
    )


def with_kinds(catalog: Mapping[str, ModelEntry]) -> dict[str, ModelEntry]:
    """``catalog`` with each entry's ``kind`` filled from the built-in table where the entry has none."""
    by_name, by_hash = builtin_kinds(), _builtin_kinds_by_hash()
    return {
        name: entry if entry.kind else entry.with_kind(by_name.get(name) or by_hash.get(entry.hash))
        for name, entry in catalog.items()
    }
