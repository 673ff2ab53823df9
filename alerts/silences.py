"""Silences (mute matching alerts for a while) and acks (someone is on it).

Both change what people are paged about, so both are recorded: the current
set in ``state_dir/silences.json`` (atomic replace) and every change appended
to ``state_dir/audit.jsonl`` (who, when, what, why).  A silenced or acked
alert is still evaluated and published, with ``silenced``/``acked`` set, so
dashboards stay truthful; notification integrations decide what to mute.

A silence's ``match`` is ``key=value`` pairs over the event: ``rule``,
``device``, ``severity``, ``site``, ``hall``, ``row``, ``rack``,
``fingerprint``, and any series tag or label; values may be globs.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alerts.selectors import value_matches
from contract.alert_event import FINGERPRINT, LABELS, SERIES
from alerts.state_store import atomic_write_json, read_json
from sinks.durable import private_dir

__all__ = ["Silence", "Ack", "Silences", "parse_duration", "SilenceError"]

_NS = 1_000_000_000
#: how long an ended silence stays in ``silences.json`` after it ends (operators still see what just ended)
KEEP_ENDED_NS = 86400 * _NS


class SilenceError(ValueError):
    """A silence or ack command that cannot be applied; the message says which field."""


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` or plain seconds -> seconds."""
    text = str(text).strip().lower()
    if not text:
        raise SilenceError("duration is empty")
    try:
        return float(text)
    except ValueError:
        pass
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total, num = 0.0, ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
        else:
            raise SilenceError(f"duration {text!r}: use e.g. 90s, 15m, 2h, 1d")
    if num:
        raise SilenceError(f"duration {text!r}: number without unit at the end")
    return total


@dataclass
class Silence:
    id: str
    match: dict[str, str]
    starts_ns: int
    ends_ns: int
    author: str
    reason: str
    created_ns: int

    def active(self, now_ns: int) -> bool:
        return self.starts_ns <= now_ns < self.ends_ns

    def matches(self, event: dict[str, Any]) -> bool:
        for key, want in self.match.items():
            value = event.get(key)
            if value is None or isinstance(value, (dict, list)):
                value = event.get(SERIES, {}).get(key) or event.get(LABELS, {}).get(key)
            if not value_matches((want,), None if value is None else str(value)):
                return False
        return True


@dataclass
class Ack:
    fingerprint: str
    author: str
    comment: str
    time_ns: int


@dataclass
class _State:
    silences: list[Silence] = field(default_factory=list)
    acks: dict[str, Ack] = field(default_factory=dict)


class Silences:
    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / "silences.json"
        self.audit_path = self.dir / "audit.jsonl"
        self._mtime: int | None = None
        self.state = _State()
        self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        """Pick up silences written by another process (``dcim alerts silence --state-dir``)."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime == self._mtime:
            return False
        raw = read_json(self.path, {"silences": [], "acks": {}})
        try:
            self.state = _State(
                silences=[Silence(**s) for s in raw.get("silences", [])],
                acks={fp: Ack(**a) for fp, a in raw.get("acks", {}).items()},
            )
        except TypeError as exc:
            raise SilenceError(f"{self.path}: unexpected content ({exc})") from None
        self._mtime = mtime
        return True

    # -- changes (recorded) -------------------------------------------------------------
    def add(self, match: dict[str, str], *, duration_s: float, author: str, reason: str, now_ns: int,
            starts_ns: int | None = None) -> Silence:
        if not match:
            raise SilenceError("a silence needs a selector (e.g. device=pdu-a)")
        if not author.strip():
            raise SilenceError("a silence needs --author")
        if not reason.strip():
            raise SilenceError("a silence needs --reason")
        if duration_s <= 0:
            raise SilenceError("a silence needs a positive duration")
        start = now_ns if starts_ns is None else starts_ns
        s = Silence(uuid.uuid4().hex[:12], dict(match), start, start + int(duration_s * _NS), author, reason, now_ns)
        self.state.silences.append(s)
        self._save("silence", asdict(s), now_ns)
        return s

    def expire(self, silence_id: str, *, author: str, now_ns: int) -> bool:
        for s in self.state.silences:
            if s.id == silence_id:
                s.ends_ns = min(s.ends_ns, now_ns)
                self._save("expire", {"id": silence_id, "author": author}, now_ns)
                return True
        return False

    def ack(self, fingerprint: str, *, author: str, comment: str = "", now_ns: int) -> Ack:
        if not fingerprint:
            raise SilenceError("ack needs a fingerprint")
        if not author.strip():
            raise SilenceError("ack needs an author")
        a = Ack(fingerprint, author, comment, now_ns)
        self.state.acks[fingerprint] = a
        self._save("ack", asdict(a), now_ns)
        return a

    def clear_ack(self, fingerprint: str, now_ns: int) -> None:
        """An alert that resolves loses its ack: the next occurrence pages again."""
        if self.state.acks.pop(fingerprint, None) is not None:
            self._save("unack", {FINGERPRINT: fingerprint, "why": "resolved"}, now_ns)

    def prune(self, now_ns: int) -> bool:
        """Forget silences that ended more than :data:`KEEP_ENDED_NS` ago, so ``silences.json``
        does not grow for ever (the audit log keeps them).  The rule engine calls this on
        every tick; every recorded change prunes too.  True when the file was rewritten."""
        self.reload_if_changed()  # never write back a stale copy over another process's change
        if self._drop_ended(now_ns):
            self._write()
            return True
        return False

    def _drop_ended(self, now_ns: int) -> bool:
        keep = [s for s in self.state.silences if s.ends_ns > now_ns - KEEP_ENDED_NS]
        dropped = len(keep) != len(self.state.silences)
        self.state.silences = keep
        return dropped

    # -- queries -----------------------------------------------------------------------------
    def silenced_by(self, event: dict[str, Any], now_ns: int) -> str | None:
        for s in self.state.silences:
            if s.active(now_ns) and s.matches(event):
                return s.id
        return None

    def is_acked(self, fingerprint: str) -> bool:
        return fingerprint in self.state.acks

    def active_silences(self, now_ns: int) -> list[Silence]:
        return [s for s in self.state.silences if s.active(now_ns)]

    def audit(self) -> list[dict[str, Any]]:
        try:
            return [json.loads(l) for l in self.audit_path.read_text(encoding="utf-8").splitlines() if l.strip()]
        except FileNotFoundError:
            return []

    # -- storage -------------------------------------------------------------------------------
    def _write(self) -> None:
        atomic_write_json(self.path, {"silences": [asdict(s) for s in self.state.silences],
                                      "acks": {fp: asdict(a) for fp, a in self.state.acks.items()}})
        self._mtime = self.path.stat().st_mtime_ns

    def _save(self, action: str, record: dict[str, Any], now_ns: int) -> None:
        self._drop_ended(now_ns)
        self._write()
        private_dir(self.dir)
        line = json.dumps({"action": action, "time_ns": now_ns, **record}, separators=(",", ":")) + "\n"
        fd = os.open(self.audit_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
