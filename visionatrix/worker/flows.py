"""Which installed flows this worker offers to run: every node class implemented, every model on disk.

The others are reported to the server with the reason (``unavailable_flows``), so a task that no
worker can take says why instead of sitting at 0 %.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from visionatrix.client import Client
from visionatrix.engine import registry

log = logging.getLogger(__name__)

FLOWS_TTL = 5.0  # look at the disk again this often: a model file may have landed
# re-read the installed flows at least this often; sooner when a long poll ends early, which the
# server does at once when they differ from the ``known_flows`` the worker sent
SERVER_TTL = 300.0


class RunnableFlows:
    """The flows to ask the server for: the installed ones (re-read when they may have changed)
    whose node classes this engine has and whose model files are on disk (looked at every
    ``FLOWS_TTL`` seconds).

    A flow that failed for a model file missing on this machine (one not in its ``models`` list,
    or removed since the last look) is not offered again until that file is there.
    """

    def __init__(self, client: Client, models_dir: Path) -> None:
        self.client = client
        self.models_dir = models_dir
        self._names: list[str] = []
        self.unavailable: dict[str, str] = {}  # installed flow -> why this worker does not take it
        self.known: list[str] = []  # every installed flow, runnable here or not
        self._installed: list[dict[str, Any]] = []
        self._fetched = -SERVER_TTL
        self._at = -FLOWS_TTL
        self._missing: dict[str, list[Path]] = {}  # flow name -> model files it lacked when it ran

    def invalidate(self) -> None:
        """The installed flows may have changed: re-read them before the next poll."""
        self._fetched = -SERVER_TTL

    def names(self) -> list[str]:
        now = time.monotonic()
        if now - self._fetched >= SERVER_TTL:
            self._installed = self.client.flows()
            self.known = [f["name"] for f in self._installed]
            self._missing = {name: files for name, files in self._missing.items() if name in self.known}
            self._fetched, self._at = now, -FLOWS_TTL
        if now - self._at >= FLOWS_TTL:
            reasons = {f["name"]: self._why_not(f) for f in self._installed}
            self._names = [name for name, reason in reasons.items() if not reason]
            self.unavailable = {name: reason for name, reason in reasons.items() if reason}
            self._at = now
        return self._names

    def lacks_files(self, flow: str, files: list[Path]) -> None:
        """``flow`` failed here for want of ``files``: stop offering it until they are on disk."""
        log.warning(
            "flow %s needs %s; not taking its tasks until the file is there",
            flow,
            ", ".join(map(str, files)),
            extra={"action": "flow_waits_for_models", "flow": flow},
        )
        self._missing[flow] = files
        self.invalidate()

    @property
    def waiting_for_files(self) -> bool:
        return bool(self._missing)

    def _why_not(self, flow: dict[str, Any]) -> str:
        """Why this worker cannot run ``flow`` now; empty when it can."""
        if classes := registry.missing(flow.get("node_classes") or []):
            return f"node classes not implemented: {', '.join(sorted(classes))}"
        listed = [self.models_dir / m.get("folder", "") / m["filename"] for m in flow.get("models") or []]
        return _missing_models(listed) or self._files_not_back(flow["name"])

    def _files_not_back(self, name: str) -> str:
        files = self._missing.get(name)
        if files is None:
            return ""
        if reason := _missing_models(files):
            return reason
        log.info(
            "flow %s: its model files are back", name, extra={"action": "flow_models_back", "flow": name}
        )
        del self._missing[name]
        return ""


def _missing_models(paths: list[Path]) -> str:
    missing = [path.name for path in paths if not path.is_file()]
    if not missing:
        return ""
    named = ", ".join(repr(name) for name in missing[:3]) + (
        f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    )
    return f"missing model{'s' if len(missing) > 1 else ''} {named}"
