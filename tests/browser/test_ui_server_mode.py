"""The web UI in SERVER mode: the browser's Basic-auth, users who never see each other's tasks, a
non-admin without admin controls, and the queue controls on tasks that wait (no worker runs here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Pages, shot
from tests.support import FLOWS, Server, create_user, png_bytes

ADMIN = ("admin", "admin-pw")
ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("ui-server")
    server = Server(workdir, f"sqlite:///{workdir / 'vix.db'}", mode="SERVER", VIX_ADMIN_PASSWORD=ADMIN[1])
    server.start()
    try:
        server.install(FLOWS / "invert_image.json")
        create_user(server, *ALICE)
        create_user(server, *BOB)
        yield server
    finally:
        server.stop()


@pytest.fixture
def photo(tmp_path: Path) -> str:
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes())
    return str(path)


def _run(page: Any, photo: str) -> int:
    """Queue one invert_image task from its page; its id."""
    before = set(page.locator("li.task").evaluate_all("items => items.map(i => i.dataset.task)"))
    page.get_by_label("Input image", exact=True).set_input_files(photo)
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("n => document.querySelectorAll('li.task').length > n", arg=len(before))
    after = set(page.locator("li.task").evaluate_all("items => items.map(i => i.dataset.task)"))
    (new,) = after - before
    return int(new)


def _queue(page: Any) -> list[int]:
    return [int(i) for i in page.locator("li.task").evaluate_all("items => items.map(i => i.dataset.task)")]


def test_without_credentials_the_browser_is_asked_for_them(ui_server: Server) -> None:
    for path in ("/", "/workflows/invert_image", "/ui/app.js", "/docs", "/openapi.json"):
        answer = httpx.get(ui_server.url + path)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Basic", path


def test_users_never_see_each_other_s_tasks(pages: Pages, ui_server: Server, photo: str) -> None:
    alice = pages.open(ALICE)
    bob = pages.open(BOB)
    for page in (alice, bob):
        page.goto("/workflows/invert_image")
        page.get_by_text("● live").wait_for()
    hers = _run(alice, photo)
    his = _run(bob, photo)
    bob.wait_for_timeout(1500)  # time for any stray event to arrive; none may
    assert _queue(alice) == [hers]
    assert _queue(bob) == [his]
    alice.reload()
    alice.locator("li.task").first.wait_for()
    assert _queue(alice) == [hers]
    shot(alice, "server-mode-alice")
    shot(bob, "server-mode-bob")
    assert alice.get_by_text("alice", exact=True).is_visible()


def test_queued_tasks_change_priority_and_cancel(pages: Pages, ui_server: Server, photo: str) -> None:
    page = pages.open(ALICE)
    page.goto("/workflows/invert_image")
    page.get_by_text("● live").wait_for()
    first, second = _run(page, photo), _run(page, photo)
    item = page.locator(f'li.task[data-task="{second}"]')
    item.get_by_role("button", name=f"Raise priority of task {second}").click()
    item.get_by_text("priority 1").wait_for()
    queue = _queue(page)
    assert queue[0] == second and queue.index(second) < queue.index(first), "the higher priority waits first"
    shot(page, "queue-priority")
    item.get_by_role("button", name=f"Cancel task {second}").click()
    item.wait_for(state="detached")
    assert second not in _queue(page)
    with ui_server.client(ALICE) as http:
        assert http.get(f"/vapi/tasks/progress/{second}").status_code == 404
        assert http.get(f"/vapi/tasks/progress/{first}").json()["status"] == "queued"


def test_a_user_who_is_not_an_admin_sees_no_admin_controls(pages: Pages, ui_server: Server) -> None:
    bob = pages.open(BOB)
    bob.goto("/")
    bob.locator('[data-flow="invert_image"]').wait_for()
    assert bob.get_by_role("button", name="Install", exact=False).count() == 0
    assert bob.get_by_role("button", name="Uninstall Invert image").count() == 0
    bob.get_by_text("Only administrators can install flows.").wait_for()
    shot(bob, "server-mode-catalog-user")
    bob.goto("/settings")
    bob.get_by_role("region", name="My settings").wait_for()
    assert bob.get_by_role("region", name="Server settings").count() == 0
    admin = pages.open(ADMIN)
    admin.goto("/")
    admin.get_by_role("button", name="Install SDXL Lighting").wait_for()
    assert admin.get_by_role("button", name="Uninstall Invert image").is_visible()
    shot(admin, "server-mode-catalog-admin")


def test_a_task_no_worker_can_take_says_why(pages: Pages, ui_server: Server, photo: str) -> None:
    page = pages.open(ALICE)
    page.goto("/workflows/invert_image")
    page.get_by_text("● live").wait_for()
    task = _run(page, photo)
    item = page.locator(f'li.task[data-task="{task}"]')
    item.get_by_role("status").filter(has_text="no worker is online").wait_for()
    shot(page, "queue-warning")
    with ui_server.client(ALICE) as http:
        assert http.get(f"/vapi/tasks/progress/{task}").json()["warning"] == "no worker is online"
