"""Every code block of README.md and docs/*.md runs as written, against a real server.

Blocks tagged ``python``, ``bash``, ``sh`` or ``console`` run (``console``: its ``$ `` lines);
other blocks (``text``, ``json``, diagrams) are not code. A block that must not run here says
so, visibly, on the line before its fence: ``<!-- not run: the reason -->``; each one is a
skipped test below that shows its reason, and there are few of them.

Each document runs top to bottom against its own fresh server (DEFAULT mode, one local worker,
tiny models under the catalog's file names, offline), in a folder holding ``photo.jpg`` and
``photo.png`` (the docs' "your image"). Python blocks share one namespace per document, like a
notebook; shell blocks run with ``bash -e -o pipefail``, the venv's ``bin`` first on PATH and
``VISIONATRIX_API_URL`` pointing at the server. The only rewriting: the docs' addresses
(``localhost:8288``, and Ollama's ``127.0.0.1:11434``) become the test servers'. curl runs with
``--fail-with-body`` (from a ``.curlrc``), so an HTTP error fails the block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT, Server
from visionatrix.testing.llm_server import LLMServer

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"python", "bash", "sh", "console"}
FLOWS_USED = ["remove_background_birefnet", "sdxl_lighting"]
_FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str  # the reason, or "" for a block that runs

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def code_blocks(doc: Path) -> list[Block]:
    lines = doc.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        found.append(
            Block(doc, index + 1, opening[1], "\n".join(lines[index + 1 : end]), _reason(lines, index))
        )
        index = end + 1
    return found


def _reason(lines: list[str], fence: int) -> str:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    marker = _NOT_RUN.match(lines[before].strip()) if before >= 0 else None
    return marker[1] if marker else ""


ALL_BLOCKS = [b for doc in DOCUMENTS for b in code_blocks(doc) if b.lang in RUNNABLE]
NOT_RUN = [b for b in ALL_BLOCKS if b.not_run]


def test_the_docs_have_runnable_blocks_and_few_exceptions() -> None:
    assert len(ALL_BLOCKS) - len(NOT_RUN) >= 15
    assert len(NOT_RUN) <= 5, [b.where for b in NOT_RUN]


@pytest.mark.parametrize("block", NOT_RUN, ids=[b.where for b in NOT_RUN])
def test_block_not_run(block: Block) -> None:
    pytest.skip(f"not run: {block.not_run}")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="the docs' flows need the worker extra (torch)")
    from visionatrix.testing.tiny_models import write_tiny_models

    out = tmp_path_factory.mktemp("models")
    write_tiny_models(out, flows=FLOWS_USED)
    return out


@pytest.fixture
def docs_server(tmp_path: Path, sqlite_url: str, models_dir: Path) -> Iterator[Server]:
    server = Server(tmp_path, sqlite_url, MODELS_DIR=str(models_dir), HF_HUB_OFFLINE="1")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _folder(tmp_path: Path) -> Path:
    from PIL import Image

    here = tmp_path / "work"
    here.mkdir()
    photo = Image.new("RGB", (96, 64), (40, 120, 200))
    photo.paste((230, 200, 30), (30, 16, 66, 48))  # something to cut out
    photo.save(here / "photo.jpg", "JPEG")
    photo.save(here / "photo.png", "PNG")
    (here / ".curlrc").write_text("fail-with-body\n")
    return here


def _addresses(code: str, server: Server, llm: LLMServer) -> str:
    host = server.url.removeprefix("http://")
    code = code.replace("http://localhost:8288", server.url).replace("localhost:8288", host)
    return code.replace("http://127.0.0.1:11434", llm.url)


def _run_shell(block: Block, code: str, here: Path, server: Server) -> None:
    if block.lang == "console":
        code = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))
    env = dict(server.env)
    env.pop("VIX_MODE", None)
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        VISIONATRIX_API_URL=server.url,
        CURL_HOME=str(here),
    )
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", code],
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{block.where} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def _run_python(block: Block, code: str, namespace: dict[str, object]) -> None:
    exec(compile(code, block.where, "exec"), namespace)  # noqa: S102 - the docs' own code, as written


@pytest.mark.parametrize("doc", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_every_block_runs(
    doc: Path, docs_server: Server, llm: LLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = _folder(tmp_path)
    monkeypatch.chdir(here)
    monkeypatch.setenv("VISIONATRIX_API_URL", docs_server.url)
    namespace: dict[str, object] = {"__name__": "__main__"}
    ran = 0
    for block in code_blocks(doc):
        if block.lang not in RUNNABLE or block.not_run:
            continue
        code = _addresses(block.code, docs_server, llm)
        if block.lang == "python":
            _run_python(block, code, namespace)
        else:
            _run_shell(block, code, here, docs_server)
        ran += 1
    if doc.name in {"README.md", "integration.md", "llm.md"}:
        assert ran > 0, f"{doc.name}: no block ran"
