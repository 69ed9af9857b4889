"""The services one app instance holds, built in the lifespan and handed to routes by ``deps``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.config import Config
from visionatrix.flows.catalog import FlowCatalog
from visionatrix.storage import Storage
from visionatrix.tasks.events import TaskEvents
from visionatrix.tasks.queue import TaskQueue
from visionatrix.tasks.service import TaskService
from visionatrix.tasks.signals import Signal
from visionatrix.users import Verifier


@dataclass
class Services:
    config: Config
    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    tasks: TaskService
    queue: TaskQueue
    flows: FlowCatalog
    verifier: Verifier
    finished: Signal
    events: TaskEvents
