"""Put the catalog's model files into ``MODELS_DIR/<folder>/<filename>``, verified, with progress.

Hugging Face URLs (``https://huggingface.co/<repo>/resolve/<rev>/<path>``) go through
``huggingface_hub`` (tokens for gated repos, mirrors via ``hf_endpoint``, its own resume);
anything else streams over plain HTTP into ``<file>.part`` and resumes with a ``Range``
request. Either way the file is checked against the catalog's sha256 before an atomic
rename makes it visible, so a downloaded model is always a whole, verified file. A file that is
already at its path counts as installed: users place files by hand, offline.

Offline (or when the source cannot be reached at all) the error is ``ModelMissing``, naming
each file, where to download it, and the full path to put it at.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
from filelock import FileLock

from visionatrix.errors import ModelDownloadError, ModelMissing
from visionatrix.models.catalog import ModelEntry
from visionatrix.models.verify import remember_hash, sha256_file

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
"""``on_progress(filename, bytes_done, bytes_total)``; ``bytes_total`` is 0 when unknown."""

HF_HOSTS = frozenset({"huggingface.co", "hf.co"})
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+\d+-\d+/(\d+)")


class _Unreachable(Exception):
    """The source could not be contacted at all: no network, DNS failure, connection refused."""


class _RestartDownload(Exception):
    """The server refused to resume the partial file; start it over."""


def missing_models(entries: Iterable[ModelEntry], models_dir: Path) -> list[ModelEntry]:
    """The entries whose file is not in place."""
    return [e for e in _unique(entries) if not _installed(e, models_dir)]


def ensure_models(
    entries: Iterable[ModelEntry],
    models_dir: Path,
    *,
    on_progress: ProgressFn | None = None,
    hf_token: str | None = None,
    offline: bool = False,
    hf_endpoint: str | None = None,
) -> list[Path]:
    """Make every entry's file present and verified; returns their paths, in order.

    Raises ``ModelMissing`` (offline or source unreachable) or ``ModelDownloadError``.
    """
    wanted = _unique(entries)
    todo = missing_models(wanted, models_dir)
    if todo and offline:
        raise missing_error(todo, models_dir)
    for i, entry in enumerate(todo):
        try:
            download_model(
                entry, models_dir, on_progress=on_progress, hf_token=hf_token, hf_endpoint=hf_endpoint
            )
        except _Unreachable as exc:
            log.warning("cannot reach %s: %s", entry.url, exc)
            raise missing_error(todo[i:], models_dir) from exc
    return [e.target(models_dir) for e in wanted]


def missing_error(entries: Iterable[ModelEntry], models_dir: Path) -> ModelMissing:
    return ModelMissing([(f"{e.filename} (download: {e.url})", str(e.target(models_dir))) for e in entries])


def download_model(
    entry: ModelEntry,
    models_dir: Path,
    *,
    on_progress: ProgressFn | None = None,
    hf_token: str | None = None,
    hf_endpoint: str | None = None,
) -> Path:
    """Fetch one entry's file (unless already there), verify it, and move it into place."""
    target = entry.target(models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    progress = on_progress or _no_progress
    # Two workers sharing a models folder must not write the same .part at once.
    with FileLock(str(target) + ".lock"):
        if _installed(entry, models_dir):
            return target
        hub = hub_file(entry.url, hf_endpoint)
        if hub is not None:
            fetched, digest = _fetch_hub(entry, hub, target, progress, hf_token)
        else:
            fetched, digest = _fetch_http(entry, target, progress)
        _check(entry, fetched, digest)
        os.replace(fetched, target)
        remember_hash(target, digest)
    log.info("model %s installed at %s", entry.name, target)
    return target


def _installed(entry: ModelEntry, models_dir: Path) -> bool:
    # A file a user put in place counts as installed, as the offline instructions promise; only
    # what this module downloads is checked against the catalog's sha256 (before it becomes visible).
    return entry.target(models_dir).is_file()


def _unique(entries: Iterable[ModelEntry]) -> list[ModelEntry]:
    return list({e.relpath: e for e in entries}.values())


def _no_progress(filename: str, done: int, total: int) -> None:
    pass


def _check(entry: ModelEntry, fetched: Path, digest: str) -> None:
    size = fetched.stat().st_size
    if entry.hash and digest != entry.hash:
        fetched.unlink()
        raise ModelDownloadError(
            f"{entry.filename}: the file downloaded from {entry.url} has sha256 {digest}, "
            f"the catalog expects {entry.hash}; it was discarded"
        )
    if entry.file_size is not None and size != entry.file_size:
        fetched.unlink()
        raise ModelDownloadError(
            f"{entry.filename}: the file downloaded from {entry.url} has {size} bytes, "
            f"the catalog expects {entry.file_size}; it was discarded"
        )


# ---------------------------------------------------------------------------------------- plain HTTP


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _fetch_http(entry: ModelEntry, target: Path, progress: ProgressFn) -> tuple[Path, str]:
    part = part_path(target)
    for _ in range(2):  # the second round only after the server refused to resume
        try:
            return part, _stream_into(entry, part, progress)
        except _RestartDownload:
            part.unlink(missing_ok=True)
    raise ModelDownloadError(f"{entry.filename}: {entry.url} refuses to serve the file from the start")


def _stream_into(entry: ModelEntry, part: Path, progress: ProgressFn) -> str:
    """Append the rest of the file to ``part``; returns the sha256 of the whole of it."""
    digest = hashlib.sha256()
    done = part.stat().st_size if part.exists() else 0
    if done:
        sha256_file(part, digest)
        if done == entry.file_size:  # finished earlier, not yet moved into place
            return digest.hexdigest()
    headers = {"Range": f"bytes={done}-"} if done else {}
    try:
        with httpx.stream(
            "GET", entry.url, headers=headers, follow_redirects=True, timeout=HTTP_TIMEOUT
        ) as r:
            if r.status_code == 416:
                raise _RestartDownload()
            r.raise_for_status()
            if done and r.status_code != 206:  # the server ignored Range: it sends the whole file
                done, digest = 0, hashlib.sha256()
            total = _total_size(r, done, entry)
            with part.open("ab" if done else "wb") as f:
                for chunk in r.iter_bytes(_CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(entry.filename, done, total)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _Unreachable(str(exc)) from exc
    except httpx.HTTPStatusError as exc:
        raise ModelDownloadError(
            f"cannot download {entry.filename} from {entry.url}: HTTP {exc.response.status_code}"
        ) from exc
    except httpx.HTTPError as exc:
        raise ModelDownloadError(
            f"download of {entry.filename} from {entry.url} was interrupted ({exc!r}); "
            f"{done} bytes kept in {part}, the next attempt resumes from there"
        ) from exc
    return digest.hexdigest()


def _total_size(response: httpx.Response, done: int, entry: ModelEntry) -> int:
    if m := _CONTENT_RANGE.match(response.headers.get("content-range", "")):
        return int(m.group(1))
    if length := response.headers.get("content-length"):
        return done + int(length)
    return entry.file_size or 0


# ---------------------------------------------------------------------------------------- Hugging Face


@dataclass(frozen=True)
class HubFile:
    """A file in a Hugging Face repository, parsed from its ``/resolve/`` URL."""

    repo_id: str
    repo_type: str  # "model", "dataset" or "space"
    revision: str
    path: str
    endpoint: str | None  # None: huggingface_hub's default (honours HF_ENDPOINT)


def hub_file(url: str, hf_endpoint: str | None = None) -> HubFile | None:
    """The Hub file behind ``url``, or None when it is not a Hub ``resolve`` URL.

    ``hf_endpoint`` is a mirror or a private Hub: URLs on it are Hub URLs too, and
    huggingface.co URLs are fetched from it.
    """
    parsed = urlparse(url)
    base = hf_endpoint.rstrip("/") if hf_endpoint else ""
    if parsed.hostname in HF_HOSTS:
        path = parsed.path
    elif base and url.startswith(base + "/"):
        path = urlparse(url[len(base) :]).path
    else:
        return None
    return _parse_resolve_path(path, hf_endpoint)


def _parse_resolve_path(path: str, endpoint: str | None) -> HubFile | None:
    parts = [unquote(p) for p in path.strip("/").split("/")]
    repo_type = "model"
    if parts and parts[0] in ("datasets", "spaces"):
        repo_type = parts.pop(0)[:-1]
    if len(parts) < 5 or parts[2] != "resolve":
        return None
    return HubFile(
        repo_id=f"{parts[0]}/{parts[1]}",
        repo_type=repo_type,
        revision=parts[3],
        path="/".join(parts[4:]),
        endpoint=endpoint,
    )


def _fetch_hub(
    entry: ModelEntry, hub: HubFile, target: Path, progress: ProgressFn, token: str | None
) -> tuple[Path, str]:
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    _probe_hub(hub)
    # huggingface_hub keeps its partial download under this folder and resumes it next time.
    staging = target.with_name(f".{target.name}.hub")
    try:
        fetched = hf_hub_download(
            hub.repo_id,
            hub.path,
            repo_type=hub.repo_type,
            revision=hub.revision,
            local_dir=staging,
            token=token or None,
            endpoint=hub.endpoint,
            tqdm_class=_hub_progress(entry.filename, progress),
        )
    except hf_errors.OfflineModeIsEnabled as exc:
        raise _Unreachable(str(exc)) from exc
    except hf_errors.LocalEntryNotFoundError as exc:
        # huggingface_hub wraps "the server said no" (404...) and "no server at all" alike
        if isinstance(exc.__cause__, hf_errors.HfHubHTTPError):
            reason = str(exc.__cause__).splitlines()[0]
            raise ModelDownloadError(f"cannot download {entry.filename} from {entry.url}: {reason}") from exc
        raise _Unreachable(str(exc)) from exc
    except hf_errors.GatedRepoError as exc:
        raise ModelDownloadError(
            f"cannot download {entry.filename}: {entry.url} is gated; accept its terms at "
            f"{entry.homepage or entry.url} and set HF_AUTH_TOKEN"
        ) from exc
    except Exception as exc:  # huggingface_hub raises from several libraries; name the file either way
        raise ModelDownloadError(f"cannot download {entry.filename} from {entry.url}: {exc}") from exc
    return _unstage(Path(fetched), staging, target)


def _probe_hub(hub: HubFile) -> None:
    """Fail fast when the Hub cannot be reached: huggingface_hub retries for ~25 s before giving up."""
    from huggingface_hub import constants, hf_hub_url

    if constants.HF_HUB_OFFLINE:
        raise _Unreachable("HF_HUB_OFFLINE is set")
    url = hf_hub_url(
        hub.repo_id, hub.path, repo_type=hub.repo_type, revision=hub.revision, endpoint=hub.endpoint
    )
    try:
        httpx.head(url, timeout=HTTP_TIMEOUT)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _Unreachable(f"{url}: {exc}") from exc
    except httpx.HTTPError:
        pass  # it answered (or half did): huggingface_hub gives the precise error


def _unstage(fetched: Path, staging: Path, target: Path) -> tuple[Path, str]:
    """Move the Hub's finished file next to its target and drop the staging folder."""
    ready = part_path(target)
    os.replace(fetched, ready)
    shutil.rmtree(staging, ignore_errors=True)
    return ready, sha256_file(ready)


def _hub_progress(filename: str, progress: ProgressFn) -> type:
    """A silent tqdm class that reports huggingface_hub's byte counts to ``progress``."""
    from tqdm import tqdm

    class HubProgress(tqdm):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["disable"] = True
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            self.vix_done = int(kwargs.get("initial") or 0)  # type: ignore[call-overload]
            self.vix_total = int(kwargs.get("total") or 0)  # type: ignore[call-overload]

        def update(self, n: float | None = 1) -> bool | None:
            self.vix_done += int(n or 0)
            progress(filename, self.vix_done, self.vix_total)
            return super().update(n)

    return HubProgress
