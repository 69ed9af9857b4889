"""Where the catalog of available flows (and model entries) comes from, kept fresh without a restart.

``FLOWS_URL`` (Visionatrix also spells it ``FLOWS_CATALOG_URL``) is a ``;``-separated list of
locations, each one of

* ``builtin``: the 52 Visionatrix flows (plus this project's own) shipped in the package;
* an ``http(s)://`` URL of a ``flows.zip`` (a URL ending in ``/`` gets ``flows.zip`` appended,
  as Visionatrix does for development versions): every ``*.json`` member is a flow;
* a local path: a ``.zip`` file as above, or a folder whose ``*.json`` files (at any depth) are
  flows, e.g. a checkout of VixFlowsDocs.

Unset, the catalog is ``builtin``. Set, it *replaces* the shipped catalog, as in Visionatrix; put
``builtin`` in the list to extend it instead. When several locations hold a flow of the same name,
the highest ``version`` wins, the earlier location on a tie.

``MODELS_CATALOG_URL`` works the same for ``models_catalog.json`` files (a URL ending in ``/``
gets ``models_catalog.json``); their entries are added to the shipped catalog, a later location's
entry replacing an earlier one of the same name.

Each location is looked at again when its data is older than ``ttl`` seconds: HTTP with
``If-None-Match`` (a ``304`` costs nothing), local files by size and modification time. A
location that fails keeps its last good data, and the failure is logged and kept in ``errors``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
from packaging.version import InvalidVersion, Version

from visionatrix.errors import VixError
from visionatrix.flows.parser import parse_flow
from visionatrix.models import catalog as model_catalog

log = logging.getLogger(__name__)

BUILTIN = "builtin"
DEFAULT_TTL = 180.0  # Visionatrix re-reads its flows catalog every 3 minutes
HTTP_TIMEOUT = 10.0
Files = dict[str, bytes]  # a location's content: relative name -> bytes


def split_locations(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


@dataclass
class Location:
    """One place the catalog reads from, with what it last read there."""

    spec: str
    default_file: str  # appended to a URL that ends in "/"
    files: Files = field(default_factory=dict)
    etag: str = ""
    stamp: tuple[int, ...] = ()
    checked_at: float = float("-inf")
    error: str = ""

    @property
    def is_http(self) -> bool:
        return urlparse(self.spec).scheme in ("http", "https")

    @property
    def url(self) -> str:
        return self.spec + self.default_file if self.spec.endswith("/") else self.spec

    @property
    def path(self) -> Path:
        if self.spec == BUILTIN:
            return Path(str(resources.files("visionatrix").joinpath("builtin", "flows")))
        parsed = urlparse(self.spec)
        return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(self.spec).expanduser()

    async def refresh(self, client: httpx.AsyncClient) -> bool:
        """Look again; True when the content changed. Failures keep the last good content."""
        try:
            files = await self._fetch(client) if self.is_http else await asyncio.to_thread(self.read_local)
        except (OSError, httpx.HTTPError, zipfile.BadZipFile, ValueError) as exc:
            self.error = f"{self.url if self.is_http else self.path}: {type(exc).__name__}: {exc}"
            log.warning("catalog location unavailable, keeping its last good data: %s", self.error)
            return False
        self.error = ""
        if files is None:
            return False
        self.files = files
        return True

    async def _fetch(self, client: httpx.AsyncClient) -> Files | None:
        headers = {"If-None-Match": self.etag} if self.etag and self.files else {}
        response = await client.get(self.url, headers=headers)
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        self.etag = response.headers.get("etag", "")
        return _unpack(self.url, response.content)

    def read_local(self) -> Files | None:
        path = self.path
        if path.is_dir():
            members = sorted(p for p in path.rglob("*.json") if p.is_file())
            stamp = tuple(x for p in members for x in (p.stat().st_mtime_ns, p.stat().st_size))
            if stamp == self.stamp and self.files:
                return None
            self.stamp = stamp
            return {str(p.relative_to(path)): p.read_bytes() for p in members}
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self.stamp and self.files:
            return None
        self.stamp = stamp
        return _unpack(str(path), path.read_bytes())


def _unpack(name: str, data: bytes) -> Files:
    """A zip's ``*.json`` members, or a lone JSON document."""
    if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {m: archive.read(m) for m in archive.namelist() if m.endswith(".json")}
    return {Path(urlparse(name).path).name or "catalog.json": data}


class CatalogSources:
    """The available flows and model entries, merged from every location, refreshed lazily."""

    def __init__(
        self,
        flows_url: str = BUILTIN,
        models_catalog_url: str = "",
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flow_locations = [Location(s, "flows.zip") for s in split_locations(flows_url) or [BUILTIN]]
        self.model_locations = [
            Location(s, "models_catalog.json") for s in split_locations(models_catalog_url)
        ]
        self.ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._flows: dict[str, dict[str, Any]] = {}
        self._models: dict[str, model_catalog.ModelEntry] = model_catalog.load_builtin_catalog()
        self._loaded = False

    @property
    def errors(self) -> list[str]:
        return [loc.error for loc in self.flow_locations + self.model_locations if loc.error]

    async def flows(self) -> dict[str, dict[str, Any]]:
        """Flow name -> graph, as the locations hold them now (at most ``ttl`` seconds old)."""
        await self._refresh()
        return self._flows

    def current_flows(self) -> dict[str, dict[str, Any]] | None:
        """The flows as last read, without looking again (``None`` before the first read)."""
        return self._flows if self._loaded else None

    async def models(self) -> dict[str, model_catalog.ModelEntry]:
        await self._refresh()
        return self._models

    async def _refresh(self) -> None:
        if self._loaded and not self._stale():
            return
        async with self._lock:  # one refresh at a time; the others wait for its result
            if self._loaded and not self._stale():
                return
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=True) as client:
                flows_changed = await self._refresh_all(self.flow_locations, client)
                models_changed = await self._refresh_all(self.model_locations, client)
            if flows_changed or not self._loaded:
                self._flows = merge_flows(loc.files for loc in self.flow_locations)
            if models_changed:
                self._models = merge_models(loc.files for loc in self.model_locations)
            self._loaded = True

    def _stale(self) -> bool:
        now = self._clock()
        return any(now - loc.checked_at >= self.ttl for loc in self.flow_locations + self.model_locations)

    async def _refresh_all(self, locations: list[Location], client: httpx.AsyncClient) -> bool:
        now = self._clock()
        due = [loc for loc in locations if now - loc.checked_at >= self.ttl]
        changed = await asyncio.gather(*(loc.refresh(client) for loc in due))
        for loc in due:
            loc.checked_at = now
        return any(changed)


def merge_flows(sources: Iterable[Files]) -> dict[str, dict[str, Any]]:
    """Flow name -> graph over ``sources``: the highest version wins, the earlier source on a tie."""
    found: dict[str, tuple[Version, dict[str, Any]]] = {}
    for files in sources:
        for member, raw in sorted(files.items()):
            parsed = _flow_from(member, raw)
            if parsed is None:
                continue
            name, version, graph = parsed
            if name not in found or version > found[name][0]:
                found[name] = (version, graph)
    return {name: graph for name, (_v, graph) in sorted(found.items())}


def _flow_from(member: str, raw: bytes) -> tuple[str, Version, dict[str, Any]] | None:
    try:
        graph = json.loads(raw)
        flow = parse_flow(graph)
    except (UnicodeDecodeError, json.JSONDecodeError, VixError) as exc:
        log.warning("catalog: %s is not a flow, skipped: %s", member, exc)
        return None
    return flow.name, version_of(flow.version), graph


def version_of(text: str) -> Version:
    try:
        return Version(text or "0")
    except InvalidVersion:
        return Version("0")


def merge_models(sources: Iterable[Files]) -> dict[str, model_catalog.ModelEntry]:
    """The shipped model catalog with each source's entries added (a later one replacing by name)."""
    merged: dict[str, Any] = {}
    for files in sources:
        for member, raw in files.items():
            try:
                data = json.loads(raw)
                merged.update(model_catalog.parse_catalog(data))
            except (UnicodeDecodeError, json.JSONDecodeError, VixError) as exc:
                log.warning("models catalog %s skipped: %s", member, exc)
    return model_catalog.with_kinds({**model_catalog.load_builtin_catalog(), **merged})


def shipped_flows() -> Mapping[str, dict[str, Any]]:
    """The flows in the package, by name (no network, no cache)."""
    location = Location(BUILTIN, "")
    return merge_flows([location.read_local() or {}])
