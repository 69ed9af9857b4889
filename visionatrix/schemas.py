"""Wire models of API.md shared by the server (and usable by clients)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

# Request bodies take JSON's own types (no "1" for 1, no 0 for false), as their schema says.
_STRICT = ConfigDict(strict=True)


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# a JSON integer: 2 and 2.0 are the same number, "2" and true are not numbers
JsonInt = Annotated[int, BeforeValidator(_integral)]


class UserInfo(BaseModel):
    user_id: str
    full_name: str = ""
    email: str = ""
    is_admin: bool = False


class WorkerDetails(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    worker_version: str = ""
    pytorch_version: str = ""
    system: dict[str, Any] = Field(default_factory=dict)
    devices: list[dict[str, Any]] = Field(default_factory=list)
    ram_total: JsonInt = 0
    ram_free: JsonInt = 0


class NextTaskRequest(BaseModel):
    model_config = _STRICT

    worker_details: WorkerDetails = Field(default_factory=WorkerDetails)
    tasks_names: list[str] = Field(default_factory=list)
    last_task_name: str = ""
    # extension: the installed flows the worker last saw; a differing set ends a long poll at once
    known_flows: list[str] | None = None
    # extension: input files up to this many bytes come inside the answer (``content_base64``),
    # saving the worker a download each
    inline_inputs: int = Field(0, ge=0, le=4 * 1024 * 1024)
    # extension: installed flows this worker cannot run, each with the reason ("missing model 'x'");
    # a task that no online worker can take shows it as its ``warning``
    unavailable_flows: dict[str, Annotated[str, StringConstraints(max_length=1000)]] | None = Field(
        None, max_length=1000
    )


class ProgressUpdate(BaseModel):
    model_config = _STRICT

    worker_details: WorkerDetails = Field(default_factory=WorkerDetails)
    task_id: JsonInt
    progress: float = Field(ge=0.0, le=100.0, allow_inf_nan=False)
    execution_time: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    error: str = ""


class PriorityUpdate(BaseModel):
    model_config = _STRICT

    priority: JsonInt = Field(ge=0, le=15)


class GlobalSetting(BaseModel):
    model_config = _STRICT

    key: str = Field(min_length=1, max_length=256)
    value: str = ""
    sensitive: bool = False


class UserSetting(BaseModel):
    model_config = _STRICT

    key: str = Field(min_length=1, max_length=256)
    value: str = ""


class WorkerSettings(BaseModel):
    model_config = _STRICT

    worker_id: str
    tasks_to_give: list[str] = Field(default_factory=list)


class TranslatePromptRequest(BaseModel):
    prompt: str = Field(description="The image generation prompt to translate.")
    system_prompt: str | None = Field(None, description="Instructions for the LLM; default: ours.")


class TranslatePromptResponse(BaseModel):
    prompt: str = Field(description="The prompt as sent.")
    result: str = Field(description="The prompt in English.")
    done_reason: str = Field(description="Why the LLM stopped: stop, max_tokens...")


class OllamaModelItem(BaseModel):
    model: str
    size: int = Field(description="bytes")
    modified_at: float = Field(description="Unix time of the model's last change")
