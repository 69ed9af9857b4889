"""SQLAlchemy 2 declarative tables. The database holds metadata; files live in the data folder."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Dialect, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(256), default="")
    email: Mapped[str] = mapped_column(String(256), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_claim", "status", "priority", "id"),
        Index("ix_tasks_user_name", "user_id", "name", "group_scope"),
        Index("ix_tasks_parent", "parent_task_id"),
        # ids are never reused after a delete: a client holding an old id must not see another task
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(String(256))
    user_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    group_scope: Mapped[int] = mapped_column(Integer, default=1)
    input_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    input_files: Mapped[list[Any]] = mapped_column(default=list)
    outputs: Mapped[list[Any]] = mapped_column(default=list)
    flow_graph: Mapped[dict[str, Any]] = mapped_column(default=dict)
    translated_input_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    execution_time: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(256), nullable=True, default=None)
    locked_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    leased_until: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    parent_task_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    parent_task_node_id: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    webhook_headers: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)


class InstalledFlow(Base):
    __tablename__ = "flows"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    graph: Mapped[dict[str, Any]] = mapped_column()
    flow: Mapped[dict[str, Any]] = mapped_column()
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowInstall(Base):
    """Progress of a flow being installed (model downloads); shared by all server processes."""

    __tablename__ = "flow_installs"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)


class Setting(Base):
    __tablename__ = "settings"

    # user_id "" holds global settings
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True, default="")
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)


class Worker(Base):
    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tasks_to_give: Mapped[list[Any]] = mapped_column(default=list)
    # installed flows the worker cannot run, each with its reason, as it last reported them
    unavailable_flows: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    current_task_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)


class TaskEvent(Base):
    """One change of a task, written in the same transaction as the change: live streams (SSE) read
    them by id, so every server process sees every change, and a client resumes from an id."""

    __tablename__ = "task_events"
    __table_args__ = (
        Index("ix_task_events_user", "user_id", "id"),
        Index("ix_task_events_at", "at"),
        # ids are never reused: a client resuming from an id must not skip a newer event
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    task_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
