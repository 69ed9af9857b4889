"""The project's one exception tree. Errors carry no HTTP codes; ``api/errors.py`` maps them.

VixError
 ├── NotFound            a task, flow, file or user that does not exist (or is not yours)
 ├── InvalidInput        a request value that cannot be accepted; names the culprit
 ├── Conflict            the request clashes with the current state (task not finished...)
 ├── Unauthorized        no or wrong credentials
 ├── Forbidden           authenticated, but not allowed
 ├── FlowNotInstalled    a flow that exists in the catalog but is not installed
 ├── MissingNodeClasses  a flow uses node classes the engine does not implement
 ├── FlowNotRunnable     a flow this server cannot run: each reason named (classes, samplers, models)
 ├── ModelMissing        a model file is not on disk (offline, or not installed yet)
 ├── ModelDownloadError  a model could not be fetched or failed verification
 ├── NodeError           a node failed while running a graph; names node id and class
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


class Unauthorized(VixError):
    """Authentication required."""


class Forbidden(VixError):
    """You are not allowed to do this."""


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
