"""One typed configuration object, read once at start and passed down explicitly."""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(enum.StrEnum):
    DEFAULT = "DEFAULT"  # server + one local worker, no auth, SQLite in the current directory
    SERVER = "SERVER"  # API only, HTTP Basic auth on every route
    WORKER = "WORKER"  # a worker pulling tasks from a remote server


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    mode: Mode = Field(
        Mode.DEFAULT, validation_alias=_env("VIX_MODE"), description="DEFAULT, SERVER or WORKER"
    )
    host: str = Field("localhost", validation_alias=_env("VIX_HOST"), description="address the server binds")
    port: int = Field(8288, validation_alias=_env("VIX_PORT"), description="port the server listens on")
    server: str = Field(
        "",
        validation_alias=_env("VIX_SERVER"),
        description="WORKER mode: URL of the server to pull tasks from",
    )
    worker_auth: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("WORKER_AUTH"),
        description="WORKER mode: 'user:password' for the server",
    )
    database_uri: str = Field(
        "",
        validation_alias=_env("DATABASE_URI"),
        description="SQLAlchemy URL; default: SQLite file in the current directory",
    )
    base_data_dir: Path = Field(
        Path("vix_data"),
        validation_alias=_env("BASE_DATA_DIR"),
        description="folder for task inputs and outputs",
    )
    models_dir: Path = Field(
        Path("vix_models"), validation_alias=_env("MODELS_DIR"), description="folder for model weights"
    )
    admin_password: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("VIX_ADMIN_PASSWORD"),
        description="SERVER mode: password of the first admin, created when there are no users",
    )
    hf_auth_token: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("HF_AUTH_TOKEN"),
        description="Hugging Face token for gated models",
    )
    lease_seconds: float = Field(
        60.0,
        validation_alias=_env("VIX_LEASE_SECONDS"),
        description="a claim expires without progress this long",
    )
    max_attempts: int = Field(
        3, validation_alias=_env("VIX_MAX_ATTEMPTS"), description="claims of a task before it fails for good"
    )
    local_workers: int = Field(
        1, validation_alias=_env("VIX_LOCAL_WORKERS"), description="DEFAULT mode: worker processes to start"
    )
    device: str = Field(
        "auto", validation_alias=_env("VIX_DEVICE"), description="worker device: auto, cpu, cuda"
    )
    precision: str = Field(
        "auto",
        validation_alias=_env("VIX_PRECISION"),
        description="worker precision: auto, float32, bfloat16, float16",
    )
    model_cache_gb: float = Field(
        0.0,
        validation_alias=_env("VIX_MODEL_CACHE_GB"),
        description="loaded-model cache budget; 0 = automatic",
    )
    max_upload_mb: float = Field(
        64.0,
        gt=0,
        validation_alias=_env("VIX_MAX_UPLOAD_MB"),
        description="largest file part a request may carry",
    )
    max_text_kb: float = Field(
        64.0,
        gt=0,
        validation_alias=_env("VIX_MAX_TEXT_KB"),
        description="longest text field a form may carry",
    )
    max_image_pixels: int = Field(
        50_000_000,
        gt=0,
        validation_alias=_env("VIX_MAX_IMAGE_PIXELS"),
        description="largest input image (width x height), judged from its header",
    )
    max_list_tasks: int = Field(
        1000,
        gt=0,
        validation_alias=_env("VIX_MAX_LIST_TASKS"),
        description="most tasks one listing answer holds",
    )
    webhook_allowlist: str = Field(
        "",
        validation_alias=_env("VIX_WEBHOOK_ALLOWLIST"),
        description="SERVER mode: private hosts/networks (CIDR) webhooks may call, comma-separated",
    )
    login_max_failures: int = Field(
        10,
        gt=0,
        validation_alias=_env("VIX_LOGIN_MAX_FAILURES"),
        description="failed logins per client and user name a minute before 429",
    )
    worker_slots: int = Field(
        1,
        ge=1,
        le=8,
        validation_alias=_env("VIX_WORKER_SLOTS"),
        description="worker: tasks run at once; 2 on a large GPU overlaps CPU and GPU work (more memory)",
    )
    compile: str = Field(
        "",
        validation_alias=_env("VIX_COMPILE"),
        description="worker: torch.compile UNet and BiRefNet: on, reduce-overhead or max-autotune (opt-in)",
    )
    stage_log: Path | None = Field(
        None,
        validation_alias=_env("VIX_STAGE_LOG"),
        description="worker: append each task's stage timings to this file (JSON lines; profiling)",
    )

    flows_url: str = Field(
        "builtin",
        validation_alias=_env("FLOWS_URL", "FLOWS_CATALOG_URL"),
        description="flow catalog: ';'-separated flows.zip URLs, zip files, folders, 'builtin' (shipped)",
    )
    models_catalog_url: str = Field(
        "",
        validation_alias=_env("MODELS_CATALOG_URL"),
        description="extra models_catalog.json URLs or files, ';'-separated, added to the shipped catalog",
    )
    catalog_ttl: float = Field(
        180.0,
        validation_alias=_env("VIX_CATALOG_TTL"),
        description="seconds before the flow and model catalogs are looked at again",
    )
    node_modules: str = Field(
        "",
        validation_alias=_env("VIX_NODE_MODULES"),
        description="extra node modules to load, comma-separated",
    )

    @field_validator("base_data_dir", "models_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # resolved once, at start: messages name the full path, and a later chdir changes nothing
        return path.expanduser().resolve()

    def webhook_allowed(self) -> list[str]:
        return [entry.strip() for entry in self.webhook_allowlist.split(",") if entry.strip()]

    def extra_node_modules(self) -> list[str]:
        return [name.strip() for name in self.node_modules.split(",") if name.strip()]

    def database_url(self) -> str:
        if self.database_uri:
            return _async_url(self.database_uri)
        return f"sqlite+aiosqlite:///{Path('visionatrix.db').resolve()}"

    @property
    def auth_required(self) -> bool:
        return self.mode is Mode.SERVER


def _async_url(url: str) -> str:
    """Accept the sync spellings users copy from elsewhere; the server needs async drivers."""
    for sync, async_ in (
        ("postgresql+psycopg2://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(sync):
            return async_ + url[len(sync) :]
    return url


def describe_environment() -> list[tuple[str, str, str]]:
    """(variable, default, description) for each setting: shown by ``visionatrix run --help``."""
    rows = []
    for name, field in Config.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if isinstance(alias, AliasChoices) else name.upper()
        default = field.default
        shown = (
            "" if isinstance(default, SecretStr) or default is None else getattr(default, "value", default)
        )
        rows.append((str(env), str(shown), field.description or ""))
    return rows
