"""The project's one exception tree. Errors carry no HTTP codes; ``api/errors.py`` maps them.

VixError
 ├── NotFound            a task, flow, file or user that does not exist (or is not yours)
 ├── InvalidInput        a request value that cannot be accepted; names the culprit
 ├── Conflict            the request clashes with the current state (task not finished...)
 │    └── InvalidTransition  the task's status does not allow this change (restart a finished task...)
 ├── Unauthorized        no or wrong credentials
 ├── Forbidden           authenticated, but not allowed
 ├── TooLarge            a request part beyond a configured limit (upload size, text, pixels)
 ├── TooManyAttempts     repeated failed logins from one client; retry after ``retry_after`` s
 ├── StorageFull         the data folder has no room to store a file
 ├── TaskFailed          a task a client waits for failed (create-sync)
 ├── TimedOut            a wait ran out of time (create-sync)
 ├── FlowNotInstalled    a flow that exists in the catalog but is not installed
 ├── MissingNodeClasses  a flow uses node classes the engine does not implement
 ├── FlowNotRunnable     a flow this server cannot run: each reason named (classes, samplers, models)
 ├── ModelMissing        a model file is not on disk (offline, or not installed yet)
 ├── ModelDownloadError  a model could not be fetched or failed verification
 ├── NodeError           a node failed while running a graph; names node id and class
 ├── NotEnoughMemory     a model does not fit in the memory the worker has free; says how much
 ├── Cancelled           the running graph was asked to stop
 └── ProviderError       an LLM provider (Ollama, Gemini, OpenAI-compatible) refused or failed
      ├── ProviderNotConfigured  no provider chosen, or a required key/URL/model is missing
      └── ProviderTimeout        the provider did not answer in time
"""

from __future__ import annotations


class VixError(Exception):
    """Something went wrong in Visionatrix."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class NotFound(VixError):
    """Not found."""


class InvalidInput(VixError):
    """Invalid input."""


class Conflict(VixError):
    """The request conflicts with the current state."""


class InvalidTransition(Conflict):
    """The task's status does not allow this change."""


class Unauthorized(VixError):
    """Authentication required."""


class Forbidden(VixError):
    """You are not allowed to do this."""


class TooLarge(VixError):
    """The request is larger than this server accepts."""


class TooManyAttempts(VixError):
    """Too many failed attempts; try again later."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class StorageFull(VixError):
    """The server has no room left to store the file."""


class TaskFailed(VixError):
    """The task failed."""


class TimedOut(VixError):
    """Timed out waiting."""


class FlowNotInstalled(NotFound):
    """The flow is not installed."""


class MissingNodeClasses(InvalidInput):
    """The flow uses node classes this engine does not implement."""

    def __init__(self, classes: list[str]) -> None:
        self.classes = sorted(set(classes))
        super().__init__("Flow uses node classes this engine does not implement: " + ", ".join(self.classes))


class FlowNotRunnable(InvalidInput):
    """This server cannot run the flow."""

    def __init__(self, name: str, reasons: list[str]) -> None:
        self.name = name
        self.reasons = list(reasons)
        super().__init__(f"flow '{name}' cannot run on this server: " + "; ".join(self.reasons))


class ModelMissing(VixError):
    """A model file is missing."""

    def __init__(self, files: list[tuple[str, str]]) -> None:
        # (file name, full path where it is expected)
        self.files = files
        listing = "; ".join(f"{name} -> put it at {where}" for name, where in files)
        super().__init__(f"Missing model file(s): {listing}")


class ModelDownloadError(VixError):
    """A model could not be downloaded or verified."""


class NodeError(VixError):
    """A node failed while the graph ran."""

    def __init__(self, node_id: str, class_type: str, reason: str) -> None:
        self.node_id = node_id
        self.class_type = class_type
        self.reason = reason
        super().__init__(f"node {node_id} ({class_type}): {reason}")


class NotEnoughMemory(VixError):
    """A model does not fit in the memory this worker has free."""

    def __init__(self, what: str, needed: int, free: int, device: str, hint: str = "") -> None:
        self.needed, self.free, self.device = needed, free, device
        gib = 1024**3
        super().__init__(
            f"{what} needs {needed / gib:.1f} GiB on {device}, but only {free / gib:.1f} GiB is free"
            + (f"; {hint}" if hint else "")
        )


class Cancelled(VixError):
    """The task was cancelled."""


class ProviderError(VixError):
    """The LLM provider failed."""

    def __init__(self, provider: str, reason: str) -> None:
        self.provider = provider
        self.reason = reason
        super().__init__(f"{provider}: {reason}")


class ProviderNotConfigured(ProviderError):
    """The LLM provider is not configured."""


class ProviderTimeout(ProviderError):
    """The LLM provider did not answer in time."""
