"""The web UI in DEFAULT mode, as a person uses it: a real server and worker running the real flows
on tiny models written in the real formats, driven through Debian's Chromium."""

from __future__ import annotations

import io
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.browser.conftest import PHONE, Pages, shot
from tests.support import Server, png_bytes
from visionatrix.testing.file_server import FileServer

pytest.importorskip("torch", reason="the model flows need the worker extra (torch)")

LITE = "birefnet/General-Lite.safetensors"
HF = "huggingface_auth_token"
LITE_ON_HUB = "/ZhengPeng7/BiRefNet_lite/resolve/main/model.safetensors"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The models folder (without BiRefNet Lite, which the catalog test installs) and Lite's file."""
    from visionatrix.testing.tiny_models import write_tiny_models

    out = tmp_path_factory.mktemp("models")
    write_tiny_models(out, u2netp=True)
    by_hand = tmp_path_factory.mktemp("by_hand") / "General-Lite.safetensors"
    shutil.move(out / LITE, by_hand)
    return out, by_hand


@pytest.fixture(scope="module")
def hub() -> Iterator[FileServer]:
    """A local stand-in for the Hugging Face Hub, slow enough for a progress bar to be seen."""
    with FileServer() as server:
        # huggingface_hub reports progress every 10 MiB
        server.add(LITE_ON_HUB, bytes(range(256)) * (40 * 1024 * 1024 // 256), chunk_delay=0.03)
        yield server


@pytest.fixture(scope="module")
def ui_server(
    tmp_path_factory: pytest.TempPathFactory, models: tuple[Path, Path], hub: FileServer
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("ui")
    server = Server(
        workdir, f"sqlite:///{workdir / 'vix.db'}", MODELS_DIR=str(models[0]), HF_ENDPOINT=hub.base_url
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _install(server: Server, name: str) -> None:
    with server.client() as http:
        assert http.post("/vapi/flows/flow", params={"name": name}).status_code == 200


def _task(server: Server, task_id: int) -> dict[str, Any]:
    with server.client() as http:
        return http.get(f"/vapi/tasks/progress/{task_id}").json()  # type: ignore[no-any-return]


def _progress_seen(page: Any, item: Any, timeout: float = 240) -> list[float]:
    """The values the queue item's progress bar shows, until the item leaves the queue."""
    seen: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = item.get_by_role("progressbar").get_attribute("value", timeout=200)
        except Exception:  # the item left the queue: the task finished
            return seen
        if value is not None and (not seen or float(value) != seen[-1]):
            seen.append(float(value))
        page.wait_for_timeout(100)
    raise AssertionError(f"the task did not finish; progress seen: {seen}")


def _newest_result_id(page: Any) -> int:
    return int(page.locator(".result").first.get_attribute("data-task"))


def test_install_from_the_catalog_shows_its_progress(
    pages: Pages, ui_server: Server, models: tuple[Path, Path]
) -> None:
    page = pages.open()
    page.goto("/")
    card = page.locator('[data-flow="remove_background_birefnet_lite"]')
    shot(page, "catalog")
    card.get_by_role("button", name="Install Remove background (BiRefNet Lite)").click()
    bar = card.get_by_role("progressbar")
    bar.wait_for()
    shot(page, "catalog-installing")
    values = []
    read = "() => document.querySelector('[data-flow=remove_background_birefnet_lite] progress')?.value"
    while (value := page.evaluate(read)) is not None:  # undefined: the bar is gone
        values.append(float(value))
        page.wait_for_timeout(150)
    assert any(0 < v < 100 for v in values), f"the bar moved during the download: {values}"
    # the stand-in Hub serves bytes that are not the published model: the catalog's sha256 refuses them
    failed = card.get_by_text("Install failed")
    failed.wait_for()
    assert "sha256" in failed.inner_text()
    # as the offline instructions say: put the file in place by hand, then install
    shutil.copy(models[1], models[0] / LITE)
    card.get_by_role("button", name="Install Remove background (BiRefNet Lite)").click()
    card.get_by_text("✓ Installed").wait_for()
    # a catalog flow this server cannot run is hidden until asked for, then says why
    refused = page.locator(".flow-card").filter(has=page.locator(".status.warn"))
    assert refused.count() == 0
    page.get_by_label("Show flows this server cannot run").check()
    refused.first.wait_for()
    assert refused.first.locator(".status.warn").inner_text().startswith("Cannot run on this server: ")
    assert refused.first.get_by_role("button", name="Install").first.is_disabled()
    shot(page, "catalog-unsupported")
    page.get_by_label("Show flows this server cannot run").uncheck()
    card.get_by_role("link", name="Remove background (BiRefNet Lite)").click()
    page.get_by_role("heading", name="Remove background (BiRefNet Lite)").wait_for()
    assert page.url.endswith("/workflows/remove_background_birefnet_lite")


def test_prompt_run_watch_progress_open_the_image_and_send_it_on(pages: Pages, ui_server: Server) -> None:
    _install(ui_server, "remove_background_u2netp")
    page = pages.open()
    page.goto("/")
    sdxl = page.locator('[data-flow="sdxl_lighting"]')
    sdxl.get_by_role("button", name="Install SDXL Lighting").click()  # its models are on disk: at once
    sdxl.get_by_text("✓ Installed").wait_for()
    sdxl.get_by_role("link", name="Open").click()
    form = page.locator("form.flow-form")
    form.wait_for()
    for label in ("Prompt", "Number of steps", "Negative Prompt", "Seed", "Number of results"):
        assert form.get_by_label(label, exact=True).count() == 1, f"an input labelled {label!r}"
    assert form.get_by_label("Batch size").count() == 0, "hidden inputs are not shown"
    assert page.get_by_role("button", name="Run", exact=True).count() == 1
    form.get_by_role("textbox", name="Prompt", exact=True).fill("a red fox in the snow")
    page.get_by_text("Advanced options").click()
    form.get_by_label("Number of steps").select_option("4 steps")
    shot(page, "flow-sdxl_lighting")
    page.get_by_role("button", name="Run", exact=True).click()
    item = page.locator("li.task").first
    item.wait_for()
    task_id = int(item.get_attribute("data-task"))
    page.wait_for_function("() => document.querySelector('li.task progress')?.value > 0.1")
    shot(page, "flow-running")
    seen = _progress_seen(page, item)
    assert len([v for v in seen if 0 < v < 100]) >= 2, f"progress moved step by step: {seen}"
    assert seen == sorted(seen)

    result = page.locator(f'.result[data-task="{task_id}"]')
    image = result.get_by_role("img")
    image.wait_for()
    assert "vapi/tasks/results?task_id=" in image.get_attribute("src")
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 1024", arg=image.element_handle())
    assert "a red fox in the snow" in result.inner_text()
    shot(page, "flow-result")
    result.get_by_role("button", name=f"Open result 1 of task {task_id}").click()
    viewer = page.get_by_role("dialog")
    full = viewer.get_by_role("img", name=f"Result of task {task_id}, full size")
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 1024", arg=full.element_handle())
    shot(page, "result-viewer")
    viewer.get_by_role("button", name="Close").click()
    done = _task(ui_server, task_id)
    assert done["status"] == "completed" and done["input_params"]["steps_number"] == "4 steps"
    prompt = form.get_by_role("textbox", name="Prompt", exact=True)
    prompt.fill("something else")
    result.get_by_role("button", name=f"Use inputs again (task {task_id})").click()
    assert prompt.input_value() == "a red fox in the snow"
    assert form.get_by_label("Seed", exact=True).input_value() == str(done["input_params"]["seed"])
    assert not form.get_by_label("Random seed").is_checked()

    result.get_by_role("button", name=f"Send to flow (task {task_id})").click()
    page.get_by_role("dialog").get_by_label("Flow").select_option("remove_background_u2netp")
    page.get_by_role("button", name="Open with this image").click()
    page.get_by_role("heading", name="Remove background (U2-Net small)").wait_for()
    page.get_by_text(f"Made from the result of task #{task_id}").wait_for()
    assert page.get_by_role("img", name="Input image preview").is_visible()
    shot(page, "send-to-flow")
    page.get_by_role("button", name="Run", exact=True).click()
    child_card = page.locator(".result").first
    child_card.get_by_role("img").wait_for(timeout=60_000)
    child_id = _newest_result_id(page)
    child = _task(ui_server, child_id)
    assert child["parent_task_id"] == task_id and child["status"] == "completed"
    assert _task(ui_server, task_id)["child_tasks"] == [child_id]
    assert f"Made from task #{task_id}" in child_card.inner_text()


def test_remove_a_background_by_uploading_a_photo(pages: Pages, ui_server: Server, tmp_path: Path) -> None:
    _install(ui_server, "remove_background_birefnet")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (96, 64), (200, 30, 30)).save(photo)
    page = pages.open()
    page.goto("/workflows/remove_background_birefnet")
    field = page.get_by_label("Input image", exact=True)
    preview = page.get_by_role("img", name="Input image preview")
    field.wait_for()
    # pasted from the clipboard, then dropped: both fill the input
    for kind in ("paste", "drop"):
        page.evaluate(_DISPATCH_IMAGE, [kind, list(png_bytes((1, 2, 3)))])
        preview.wait_for()
        page.get_by_role("button", name="Remove Input image").click()
        preview.wait_for(state="hidden")
    field.set_input_files(str(photo))
    preview.wait_for()
    shot(page, "upload-preview")
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator(".result img").first.wait_for(timeout=120_000)
    task_id = _newest_result_id(page)
    with ui_server.client() as http:
        png = http.get(
            "/vapi/tasks/results",
            params={"task_id": task_id, "node_id": _task(ui_server, task_id)["outputs"][0]["comfy_node_id"]},
        )
    cut = Image.open(io.BytesIO(png.content))
    assert cut.mode == "RGBA" and cut.size == (96, 64)
    shot(page, "flow-remove_background_birefnet")


_DISPATCH_IMAGE = """([kind, bytes]) => {
  const file = new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"});
  const data = new DataTransfer();
  data.items.add(file);
  const zone = document.querySelector(".dropzone");
  const event = kind === "paste"
    ? new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true})
    : new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true});
  zone.dispatchEvent(event);
}"""


def _flaky_flow(marker: Path) -> dict[str, Any]:
    """LoadImage → TestFlaky (fails while ``marker`` exists) → SaveImage."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "", "upload": "image"},
              "_meta": {"title": "input;Input image;order=1;custom_id=input_image"}},
        "2": {"class_type": "TestFlaky", "inputs": {"image": ["1", 0], "broken_while": str(marker)},
              "_meta": {"title": "Flaky service"}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"},
              "_meta": {"title": "Save"}},
        "10": {"class_type": "VixUiWorkflowMetadata", "_meta": {"title": "VixUI-WorkflowMetadata"},
               "inputs": {"name": "flaky", "display_name": "Flaky service",
                          "description": "Fails while a file exists", "author": "tests",
                          "homepage": "", "documentation": "", "license": "", "tags": "[]",
                          "version": "1.0.0", "requires": "[]", "is_seed_supported": False,
                          "is_count_supported": True, "is_translations_supported": False,
                          "is_macos_supported": True, "required_memory_gb": 0}},
    }  # fmt: skip


def test_restart_a_failed_task(pages: Pages, ui_server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "service-down"
    marker.touch()
    ui_server.install(_flaky_flow(marker))
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes())
    page = pages.open()
    page.goto("/workflows/flaky")
    page.get_by_label("Input image", exact=True).set_input_files(str(photo))
    page.get_by_role("button", name="Run", exact=True).click()
    failed = page.locator('li.task[data-status="failed"]')
    failed.wait_for(timeout=60_000)
    task_id = int(failed.get_attribute("data-task"))
    assert "the service is down" in failed.get_by_role("alert").inner_text()
    shot(page, "failed-task")
    marker.unlink()
    failed.get_by_role("button", name=f"Restart task {task_id}").click()
    page.locator(f'.result[data-task="{task_id}"] img').wait_for(timeout=60_000)
    assert page.locator(f'li.task[data-task="{task_id}"]').count() == 0
    again = _task(ui_server, task_id)
    assert again["status"] == "completed" and again["error"] == ""


def test_a_phone_sized_screen(pages: Pages, ui_server: Server) -> None:
    _install(ui_server, "sdxl_lighting")
    page = pages.open(viewport=PHONE)
    for path, name in (("/", "phone-catalog"), ("/workflows/sdxl_lighting", "phone-flow")):
        page.goto(path)
        page.locator(".flow-card, form.flow-form").first.wait_for()
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
        shot(page, name)
    run = page.get_by_role("button", name="Run", exact=True).bounding_box()
    assert run is not None and run["x"] >= 0 and run["x"] + run["width"] <= PHONE["width"]


def test_settings_workers_and_the_api_docs(pages: Pages, ui_server: Server) -> None:
    _install(ui_server, "sdxl_lighting")
    page = pages.open()
    page.goto("/settings")
    token = page.get_by_label("Hugging Face token (gated models)", exact=True)
    token.fill("hf_secret_value")
    page.get_by_role("button", name="Save Hugging Face token (gated models)").click()
    page.get_by_text("Saved: Hugging Face token").wait_for()
    assert token.get_attribute("type") == "password"
    shot(page, "settings")
    assert token.get_attribute("placeholder").startswith("not shown"), "a token is write-only"
    with sqlite3.connect(ui_server.cwd / "vix.db") as db:  # the server never answers it back
        stored = db.execute(
            "SELECT value, sensitive FROM settings WHERE user_id = '' AND key = ?", [HF]
        ).fetchall()
    assert stored == [("hf_secret_value", 1)]
    page.get_by_role("link", name="Workers", exact=True).click()
    row = page.locator("tbody tr").first
    row.wait_for()
    assert "online" in row.inner_text() and "cpu" in row.inner_text().lower()
    shot(page, "workers")
    page.goto("/docs")
    page.locator('.opblock-summary-path[data-path="/vapi/tasks/create/sdxl_lighting"]').wait_for()
    page.get_by_text("flows API", exact=True).first.wait_for()
    shot(page, "docs")
    page.goto("/redoc")
    page.get_by_role("heading", name="Create a SDXL Lighting task").first.wait_for()
    shot(page, "redoc")
