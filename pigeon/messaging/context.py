"""What every messaging operation is given: who acts, in which unit of work, on what."""

from __future__ import annotations

import dataclasses

from pigeon.core.db import Databases
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.uow import UnitOfWork
from pigeon.messaging.send_tx import SendPath
from pigeon.settings import Settings


@dataclasses.dataclass(frozen=True, slots=True)
class Ctx:
    rt: Runtime
    sends: SendPath
    viewer: Principal
    uow: UnitOfWork

    @property
    def dbs(self) -> Databases:
        return self.rt.dbs

    @property
    def settings(self) -> Settings:
        return self.rt.settings
