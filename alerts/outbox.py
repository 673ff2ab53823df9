"""A persisted, bounded, ordered queue of messages waiting for their destination's ack.

Used for MQTT (topic, payload, QoS, retain) and for each Alertmanager peer
(``alerts/alertmanager_sender.py``: topic = the alert's fingerprint, payload =
the postable alert; QoS and retain unused).

Events are appended here before anything is sent and deleted only when the
broker acknowledges them (PUBACK for QoS 1, or the local write for QoS 0), so a
broker outage or an engine restart loses nothing: on reconnect the rows are
sent again in ``seq`` order.  SQLite in WAL mode in ``state_dir``; one
connection, used from the engine's thread only (paho callbacks hand acks over
through :meth:`ack` which is guarded by a lock).  When ``max_messages`` is hit
the oldest rows are dropped and counted (``dropped``): bounded memory and disk
beat an unbounded backlog after a week-long broker outage.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from sinks.durable import private_dir, private_file

__all__ = ["Outbox", "OutboxMessage"]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    def __init__(self, path: Path, *, max_messages: int = 100_000) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        private_file(self.path)
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for extra in ("-wal", "-shm"):  # alert events: 0600 like the database (older files were 0644)
            side = self.path.with_name(self.path.name + extra)
            if side.exists():
                os.chmod(side, 0o600)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
            " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('dropped', 0)")

    def append(self, messages: list[tuple[str, bytes, int, bool]]) -> list[int]:
        """Persist messages (topic, payload, qos, retain) in order; return their sequence numbers."""
        if not messages:
            return []
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            seqs = []
            for topic, payload, qos, retain in messages:
                cur.execute("INSERT INTO outbox (topic, payload, qos, retain) VALUES (?,?,?,?)",
                            (topic, payload, qos, int(retain)))
                seqs.append(cur.lastrowid)
            (n,) = cur.execute("SELECT count(*) FROM outbox").fetchone()
            over = n - self.max_messages
            if over > 0:
                cur.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (over,))
                cur.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (over,))
            cur.execute("COMMIT")
            return seqs

    def pending(self, after: int = 0, limit: int = 1000) -> list[OutboxMessage]:
        """Messages not yet acknowledged, oldest first, with seq > ``after``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos, retain FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [OutboxMessage(s, t, bytes(p), q, bool(r)) for s, t, p, q, r in rows]

    def ack(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def empty(self) -> bool:
        """Nothing waiting (cheaper than ``len``: SQLite counts rows one by one)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is None

    def keys(self) -> set[str]:
        """The distinct topics (keys) of the rows still waiting."""
        with self._lock:
            return {t for (t,) in self._db.execute("SELECT DISTINCT topic FROM outbox")}

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
