"""models.download against a real local HTTP server: download, verify, resume, fail clearly."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from visionatrix.errors import ModelDownloadError, ModelMissing
from visionatrix.models.catalog import ModelEntry
from visionatrix.models.download import ensure_models, hub_file, missing_models, part_path
from visionatrix.models.verify import file_matches, sidecar_path
from visionatrix.testing.file_server import FileServer

MiB = 1 << 20
DATA = bytes(range(256)) * (3 * MiB // 256) + b"tail"  # a bit over 3 MiB: several 1 MiB chunks
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def _entry(url: str, *, hash: str = SHA, size: int | None = len(DATA), name: str = "tiny") -> ModelEntry:
    return ModelEntry(
        name=name, url=url, folder="checkpoints", filename=f"{name}.safetensors", hash=hash, file_size=size
    )


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, filename: str, done: int, total: int) -> None:
        self.calls.append((filename, done, total))


def _closed_port_url(path: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def test_download_verifies_reports_progress_and_places_the_file(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA))
    progress = Progress()

    paths = ensure_models([entry], tmp_path, on_progress=progress)

    assert paths == [tmp_path / "checkpoints" / "tiny.safetensors"]
    assert paths[0].read_bytes() == DATA
    assert not part_path(paths[0]).exists()
    assert sidecar_path(paths[0]).is_file()
    done = [d for _, d, _ in progress.calls]
    assert len(done) >= 4 and done == sorted(done)
    assert progress.calls[-1] == ("tiny.safetensors", len(DATA), len(DATA))
    assert missing_models([entry], tmp_path) == []


def test_installed_file_is_not_downloaded_again(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA))
    ensure_models([entry], tmp_path)
    before = len(server.requests)

    assert ensure_models([entry, entry], tmp_path) == [entry.target(tmp_path)]
    assert len(server.requests) == before


def test_sidecar_spares_rehashing_until_the_file_changes(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(DATA)
    assert file_matches(path, sha256=SHA, size=len(DATA))  # hashes once, writes the sidecar
    stat = path.stat()
    # Same size and mtime but other bytes: trusted from the sidecar, proving no re-hash happened.
    path.write_bytes(bytes(len(DATA)))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_matches(path, sha256=SHA, size=len(DATA))
    # A new mtime invalidates the sidecar: the hash is computed again and no longer fits.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert not file_matches(path, sha256=SHA, size=len(DATA))


def test_resumes_from_a_partial_file(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA))
    part = part_path(entry.target(tmp_path))
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:MiB])
    progress = Progress()

    ensure_models([entry], tmp_path, on_progress=progress)

    assert entry.target(tmp_path).read_bytes() == DATA
    assert [r.range for r in server.requests] == [f"bytes={MiB}-"]
    assert progress.calls[0][1] > MiB and progress.calls[0][2] == len(DATA)


def test_interrupted_download_keeps_the_part_and_the_next_attempt_resumes(server, tmp_path):
    url = server.add("/files/tiny.bin", DATA, cut_after=MiB + 123)
    entry = _entry(url)

    with pytest.raises(ModelDownloadError) as failed:
        ensure_models([entry], tmp_path)
    assert "tiny.safetensors" in failed.value.message and url in failed.value.message
    kept = part_path(entry.target(tmp_path)).stat().st_size
    assert 0 < kept < len(DATA)

    server.files["/files/tiny.bin"].cut_after = None
    ensure_models([entry], tmp_path)
    assert entry.target(tmp_path).read_bytes() == DATA
    assert server.requests[-1].range == f"bytes={kept}-"


def test_server_ignoring_range_still_gives_a_whole_file(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA, ignore_range=True))
    part = part_path(entry.target(tmp_path))
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # not even the right bytes: must be thrown away, not appended to

    ensure_models([entry], tmp_path)
    assert entry.target(tmp_path).read_bytes() == DATA


def test_complete_part_left_by_a_crash_is_verified_and_used(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA))
    part = part_path(entry.target(tmp_path))
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA)

    ensure_models([entry], tmp_path)
    assert entry.target(tmp_path).read_bytes() == DATA
    assert server.requests == []


def test_hash_mismatch_is_an_error_that_leaves_nothing_behind(server, tmp_path):
    url = server.add("/files/tiny.bin", DATA)
    entry = _entry(url, hash="0" * 64)

    with pytest.raises(ModelDownloadError) as failed:
        ensure_models([entry], tmp_path)
    message = failed.value.message
    assert "tiny.safetensors" in message and url in message and SHA in message and "0" * 64 in message
    assert not entry.target(tmp_path).exists()
    assert not part_path(entry.target(tmp_path)).exists()


def test_http_error_names_file_url_and_status(server, tmp_path):
    url = server.url("/files/nowhere.bin")
    with pytest.raises(ModelDownloadError, match=r"tiny\.safetensors.*nowhere\.bin.*HTTP 404"):
        ensure_models([_entry(url)], tmp_path)


def test_unreachable_source_means_missing_models_with_their_paths(tmp_path):
    first = _entry(_closed_port_url("/a.bin"), name="first")
    second = _entry(_closed_port_url("/b.bin"), name="second")

    with pytest.raises(ModelMissing) as missing:
        ensure_models([first, second], tmp_path)
    message = missing.value.message
    for entry in (first, second):
        assert entry.filename in message
        assert str(tmp_path / "checkpoints" / entry.filename) in message
        assert entry.url in message
    assert [where for _, where in missing.value.files] == [
        str(first.target(tmp_path)),
        str(second.target(tmp_path)),
    ]


def test_offline_mode_never_touches_the_network(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA))
    with pytest.raises(ModelMissing, match="tiny.safetensors"):
        ensure_models([entry], tmp_path, offline=True)
    assert server.requests == []


def test_offline_mode_is_fine_when_everything_is_installed(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA))
    target = entry.target(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(DATA)
    assert ensure_models([entry], tmp_path, offline=True) == [target]


def test_a_file_placed_by_hand_counts_as_installed_and_is_left_alone(server, tmp_path):
    entry = _entry(server.add("/files/tiny.bin", DATA))
    target = entry.target(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * 10)  # e.g. a fine-tuned or test model under the catalog's name

    assert missing_models([entry], tmp_path) == []
    assert ensure_models([entry], tmp_path, offline=True) == [target]
    assert target.read_bytes() == b"\0" * 10


def test_hub_urls_are_parsed_into_repo_revision_and_path():
    hub = hub_file(
        "https://huggingface.co/ByteDance/SDXL-Lightning/resolve/main/sdxl_lightning_4step.safetensors"
    )
    assert hub is not None
    assert (hub.repo_id, hub.repo_type, hub.revision, hub.path) == (
        "ByteDance/SDXL-Lightning",
        "model",
        "main",
        "sdxl_lightning_4step.safetensors",
    )
    nested = hub_file("https://huggingface.co/datasets/o/r/resolve/refs%2Fpr%2F3/a/b/c.bin?download=true")
    assert nested is not None
    assert (nested.repo_id, nested.repo_type, nested.revision, nested.path) == (
        "o/r",
        "dataset",
        "refs/pr/3",
        "a/b/c.bin",
    )
    assert hub_file("https://civitai.com/api/download/models/143906") is None
    assert hub_file("https://huggingface.co/ByteDance/SDXL-Lightning") is None


def test_hub_download_through_huggingface_hub(server, tmp_path):
    # The local server speaks the Hub's resolve protocol (HEAD with X-Repo-Commit and ETag, then GET).
    url = server.add("/org/repo/resolve/main/unet/tiny.bin", DATA)
    entry = _entry(url)
    progress = Progress()

    paths = ensure_models([entry], tmp_path, on_progress=progress, hf_endpoint=server.base_url)

    assert paths[0].read_bytes() == DATA
    assert {r.method for r in server.requests} == {"HEAD", "GET"}
    assert progress.calls and progress.calls[-1][1] == len(DATA)
    assert sorted(p.name for p in paths[0].parent.iterdir()) == [
        "tiny.safetensors",
        "tiny.safetensors.lock",
        "tiny.safetensors.sha256",
    ]


def test_unreachable_hub_means_missing_models(tmp_path):
    base = _closed_port_url("")
    entry = _entry(base + "/org/repo/resolve/main/tiny.bin")
    with pytest.raises(ModelMissing, match="tiny.safetensors"):
        ensure_models([entry], tmp_path, hf_endpoint=base)


def test_hub_errors_name_the_file_and_url(server, tmp_path):
    url = server.url("/org/repo/resolve/main/absent.bin")
    with pytest.raises(ModelDownloadError, match=r"tiny\.safetensors.*absent\.bin"):
        ensure_models([_entry(url)], tmp_path, hf_endpoint=server.base_url)


def test_hub_download_with_a_wrong_hash_leaves_nothing_behind(server, tmp_path):
    entry = _entry(server.add("/org/repo/resolve/main/tiny.bin", DATA), hash="1" * 64)
    with pytest.raises(ModelDownloadError, match="sha256"):
        ensure_models([entry], tmp_path, hf_endpoint=server.base_url)
    assert sorted(p.name for p in entry.target(tmp_path).parent.iterdir()) == ["tiny.safetensors.lock"]
