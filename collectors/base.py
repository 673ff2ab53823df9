"""The small interface between a protocol collector and the scheduler.

Like Telegraf's ``Gather(acc)``, a collector knows nothing of batching, outputs
or scheduling: it is handed a :class:`Target` and returns Samples, or raises
:class:`PollError` naming what went wrong.  One collector instance serves every
device of its protocol in a process, so it can share sockets and connections.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

from contract.sample import Sample
from contract.poll import ERROR_KINDS
from inventory.secrets import SecretValue

__all__ = ["Target", "PollError", "Collector"]


@dataclass(slots=True)
class Target:
    """Everything a collector needs to poll one device once.

    ``tags`` are the inventory tags every sample from this device carries
    (site, hall, row, rack, device, vendor, model).  ``secrets`` hold resolved
    credentials wrapped in :class:`SecretValue` so they never print.
    """

    device_id: str
    protocol: str
    host: str = ""
    port: int | None = None
    unit: int | None = None
    kind: str = ""
    profile: str = "auto"
    tags: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 2.0
    retries: int = 1
    interval_s: float = 10.0
    options: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, SecretValue] = field(default_factory=dict)
    #: outlet -> the inventory id of the device it feeds (PDUs only): outlet samples get a
    #: ``feeds`` tag, so a node's outlet power sits beside its GPUs' power
    outlet_feeds: dict[str, str] = field(default_factory=dict)

    def secret(self, name: str, default: str | None = None) -> str | None:
        """The clear value of a credential, for the protocol library only."""
        value = self.secrets.get(name)
        return value.reveal() if value is not None else default

    def address(self) -> str:
        """Human-readable endpoint without credentials, safe for logs."""
        port = f":{self.port}" if self.port else ""
        unit = f"/{self.unit}" if self.unit is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}{port}{unit}"


class PollError(Exception):
    """A poll that did not fully succeed.

    ``kind`` is one of :data:`ERROR_KINDS`.  ``partial`` carries samples that
    are still trustworthy (e.g. a walk cut short by endOfMibView: the rows
    already read are good).  Messages must never include secrets.
    """

    def __init__(self, kind: str, message: str, partial: list[Sample] | None = None, *, excess: int = 0) -> None:
        if kind not in ERROR_KINDS:  # contract/poll.py
            raise ValueError(f"unknown poll error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.partial = partial or []
        #: series the device offered beyond what the inventory says it has (dropped, counted in ``poll``)
        self.excess = excess


class Collector(abc.ABC):
    """One protocol's poller.  Subclasses set ``protocols`` and implement ``poll``."""

    protocols: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    async def poll(self, target: Target) -> list[Sample]:
        """Poll ``target`` once; return samples or raise :class:`PollError`.

        Must honour ``target.timeout_s`` per request; the scheduler also wraps
        the call in an overall deadline and cancels it when that passes.
        """

    async def close(self) -> None:
        """Release sockets and connections.  Default: nothing to release."""
