"""SnmpCollector: profile detection, fetching through an engine, decoding, error mapping.

One instance serves every SNMP device in a process.  Through an engine that
shares one socket between devices (pysnmp) a semaphore caps polls in flight (too
many and the socket's receive buffer overflows, turning replies into timeouts);
gufo's socket per device needs no such cap, and the scheduler's per-protocol
bound, waited for outside the poll's deadline, is the only one.  Each device is
polled sequentially, devices concurrently, so one slow agent holds up nobody
but itself.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from collectors.base import Collector, PollError, Target
from collectors.slots import Slots
from contract.sample import Sample, now_ns
from contract.protocols import served_by
from collectors.snmp.counters import CounterState
from collectors.snmp.decode import Fetched, decode
from collectors.snmp.detect import Detection, decide, detect_profile, plan
from collectors.snmp.engine import (DEFAULT_ENGINE, MAX_GET_VARBINDS, Engine, SnmpEngineError, make_engine,
                                    snmp_version)
from collectors.snmp.profiles import Profile, default_profiles

__all__ = ["SnmpCollector", "SYS_OBJECT_ID", "DEFAULT_REWALK_S", "KnownRows", "detect_profile", "Detection"]

SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
DEFAULT_MAX_IN_FLIGHT = 64
#: a device's tables are walked again after this long (between walks its known rows are read with GETs)
DEFAULT_REWALK_S = 300.0


def _walk_requests(prof: Profile, walked: dict[str, tuple[str, ...]], reps: int) -> int:
    """Round trips of a walking poll: the scalars' GETs, and per root its rows and the reply
    that leaves it, ``reps`` varbinds per GETBULK."""
    return (-(-len(prof.get_oids) // MAX_GET_VARBINDS)
            + sum(-(-(len(rows) + 1) // max(1, reps)) for rows in walked.values()))


def _get_requests(prof: Profile, walked: dict[str, tuple[str, ...]]) -> int:
    """Round trips of a poll that GETs the scalars and the known rows."""
    return -(-(len(prof.get_oids) + sum(len(rows) for rows in walked.values())) // MAX_GET_VARBINDS)


@dataclass(frozen=True, slots=True)
class KnownRows:
    """The OIDs a device's last complete walk found, per walk root, for the GET polls after it."""

    profile: str
    oids: dict[str, tuple[str, ...]]
    walked_at: float  # time.monotonic()


def _split_columns(entry: str, rows: list, walks: dict) -> None:
    """File an Entry walk's rows under their column OIDs, as per-column walks would."""
    plen = len(entry) + 1
    by_col: dict[str, list] = {}  # column sub-id -> its rows (one f-string per column, not per row)
    run_prefix, run = "\0", []   # a walk gives each column's rows in a run: one startswith per row
    for row in rows:
        oid = row[0]
        if oid.startswith(run_prefix):
            run.append(row)
            continue
        dot = oid.find(".", plen)
        col = oid[plen:dot] if dot >= 0 else oid[plen:]
        found = by_col.get(col)
        if found is None:
            found = by_col[col] = walks.setdefault(f"{entry}.{col}", [])
        found.append(row)
        run_prefix, run = (f"{entry}.{col}.", found) if dot >= 0 else ("\0", [])


class SnmpCollector(Collector):
    protocols = served_by(f"{__name__}:SnmpCollector")  # its rows in contract/protocols.py

    def __init__(self, engine: str | None = None, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 profiles: dict[str, Profile] | None = None, rewalk_s: float = DEFAULT_REWALK_S) -> None:
        self.default_engine = engine or DEFAULT_ENGINE
        #: how long a device's walked rows are read back with GETs before it is walked again
        #: (0: walk every poll); see :meth:`fetch`
        self.rewalk_s = rewalk_s
        #: device_id -> the rows its last complete walk found
        self.known_rows: dict[str, KnownRows] = {}
        #: polls served by reading known rows back (the rest walked)
        self.known_polls = 0
        self.profiles = profiles if profiles is not None else default_profiles()
        self._engines: dict[str, Engine] = {}
        self._slots = Slots(max_in_flight)
        self.counters = CounterState()
        #: device_id -> (sysObjectID, profile name) for ``--profile auto``
        self.detected: dict[str, tuple[str, str]] = {}
        #: device_id -> the last detection's reasoning (``dcim probe`` prints it)
        self.detections: dict[str, Detection] = {}

    def engine_for(self, target: Target) -> Engine:
        name = str(target.options.get("engine", self.default_engine))
        eng = self._engines.get(name)
        if eng is None:
            eng = self._engines[name] = make_engine(name)
        return eng

    async def _resolve_profile(self, engine: Engine, target: Target) -> Profile:
        if target.profile and target.profile != "auto":
            prof = self.profiles.get(target.profile)
            if prof is None:
                raise PollError("config", f"{target.device_id}: unknown SNMP profile {target.profile!r} "
                                          f"(known: {', '.join(sorted(self.profiles))})")
            return prof
        cached = self.detected.get(target.device_id)
        if cached and cached[1] in self.profiles:
            return self.profiles[cached[1]]
        (_, sysoid), = await engine.get(target, [SYS_OBJECT_ID])
        if not isinstance(sysoid, str):
            raise PollError("device", f"{target.device_id}: sysObjectID.0 unreadable ({sysoid!r}); "
                                      f"force a profile with --profile NAME")
        gets, cols = plan(sysoid, self.profiles)
        answers = dict(await engine.get(target, gets)) if gets else {}
        firsts = {col: await self._first_row(engine, target, col) for col in cols}
        detection = decide(sysoid, answers, firsts, self.profiles)
        self.detections[target.device_id] = detection
        prof = detection.profile
        if prof is None:
            raise PollError("config", f"{target.device_id}: no SNMP profile matches sysObjectID {sysoid}; "
                                      f"force one with --profile NAME (known: {', '.join(sorted(self.profiles))})")
        self.detected[target.device_id] = (sysoid, prof.name)
        return prof

    @staticmethod
    async def _first_row(engine: Engine, target: Target, column: str) -> tuple[str, Any] | None:
        """The first row under a column, or None: the generation probe (GETNEXT semantics).

        Probe columns are chosen small (a device, inlet or phase table), so walking the column
        costs a datagram or two, once per device.  An agent that errors on the walk has no such
        column; a dead one raises, as any poll would.
        """
        try:
            rows = await engine.walk(target, column, 10)
        except SnmpEngineError as exc:
            if exc.kind in ("timeout", "auth", "unreachable", "config"):
                raise
            rows = exc.partial
        for oid, value in rows:
            if value is not None:
                return oid, value
        return None

    async def gaps(self, target: Target, limit: int | None = None, seconds: float | None = None) -> str:
        """Text for ``dcim probe``: the tables of the device's vendor subtree its profile does not read.

        Call after a poll (the profile is the one detected or forced).  The walk is bounded
        (``coverage.DEFAULT_LIMIT`` objects, ``DEFAULT_SECONDS``); what stopped it is said.
        """
        from collectors.snmp import coverage

        engine = self.engine_for(target)
        detected = self.detected.get(target.device_id)
        prof = self.profiles.get(target.profile) if target.profile not in ("", "auto") else \
            (self.profiles.get(detected[1]) if detected else None)
        sysoid = detected[0] if detected else None
        if sysoid is None:
            (_, sysoid), = await engine.get(target, [SYS_OBJECT_ID])
        root = coverage.enterprise_root(sysoid) if isinstance(sysoid, str) else None
        if prof is None or root is None:
            return f"no vendor subtree to compare (sysObjectID {sysoid!r}, profile {prof.name if prof else None})"
        t0 = time.monotonic()
        hints = [sysoid] + [g.table or oid for g in prof.groups for oid in ([g.table] if g.table else
                                                                             [o for o, _ in g.scalars])]
        rows, note = await coverage.walk_subtree(engine, target, root, limit or coverage.DEFAULT_LIMIT,
                                                 seconds or coverage.DEFAULT_SECONDS, hints=hints)
        found = coverage.uncovered(rows, root, prof, self.profiles)
        head = (f"{len(found)} table(s)/scalar group(s) under {root} not read by profile {prof.name} "
                f"(walked {len(rows)} objects in {time.monotonic() - t0:.1f} s{'; ' + note if note else ''})")
        return "\n".join([head] + [f"  {g.line()}" for g in found])

    async def fetch(self, engine: Engine, target: Target, prof: Profile) -> Fetched:
        """The profile's scalars and tables: walked, or read back with GETs.

        Why GETs: a profile walks each column it reads (the APC rPDU2 profile: 29 columns, so 29
        GETBULK round trips per poll for ≈190 values), and a PDU's rows (phases, outlets,
        sensors) rarely change.  After a complete walk the rows' OIDs are kept; until
        ``rewalk_s`` has passed, the next polls GET exactly those (40 per request: 5 round trips
        for that PDU) and file them as the walk did, so decoding sees the same rows.  A row that
        has gone (noSuchInstance) sends the poll back to walking at once; rows added in between
        appear at the next walk.  SNMPv1 (one missing OID fails the whole GET) always walks.
        """
        known = self.known_rows.get(target.device_id)
        if (known is not None and known.profile == prof.name and self.rewalk_s > 0
                and time.monotonic() - known.walked_at < self.rewalk_s and snmp_version(target) != "1"):
            fetched = await self._fetch_known(engine, target, prof, known)
            if fetched is not None:
                self.known_polls += 1
                return fetched
        fetched = Fetched()
        if prof.get_oids:
            fetched.gets = dict(await engine.get(target, prof.get_oids))
        reps = int(target.options.get("max_repetitions", prof.max_repetitions))
        walked: dict[str, tuple[str, ...]] = {}
        for root in prof.walk_roots:
            try:
                rows = await engine.walk(target, root, reps)
            except SnmpEngineError as exc:
                if exc.kind in ("timeout", "auth", "unreachable", "config"):
                    raise
                rows = exc.partial
                fetched.failed_walks[root] = exc.message
            walked[root] = tuple(oid for oid, _ in rows)
            self._file(prof, root, rows, fetched)
        if not fetched.failed_walks and _get_requests(prof, walked) < _walk_requests(prof, walked, reps):
            self.known_rows[target.device_id] = KnownRows(prof.name, walked, time.monotonic())
        else:  # a failed walk, or tables so long that GETBULK streams them in fewer requests
            self.known_rows.pop(target.device_id, None)
        return fetched

    async def _fetch_known(self, engine: Engine, target: Target, prof: Profile, known: "KnownRows") -> Fetched | None:
        """The walk's rows read back with GETs, or None when one of them has gone."""
        rows_oids = [oid for root in prof.walk_roots for oid in known.oids.get(root, ())]
        got = dict(await engine.get(target, list(prof.get_oids) + rows_oids))
        if any(got.get(oid) is None for oid in rows_oids):
            self.known_rows.pop(target.device_id, None)
            return None
        fetched = Fetched({oid: got.get(oid) for oid in prof.get_oids})
        for root in prof.walk_roots:
            self._file(prof, root, [(oid, got[oid]) for oid in known.oids.get(root, ())], fetched)
        return fetched

    @staticmethod
    def _file(prof: Profile, root: str, rows: list, fetched: Fetched) -> None:
        if root in prof.table_roots:
            _split_columns(root, rows, fetched.walks)
        else:
            fetched.walks[root] = rows

    async def _fetch(self, engine: Engine, target: Target) -> tuple[Profile, Fetched]:
        try:
            prof = await self._resolve_profile(engine, target)
            return prof, await self.fetch(engine, target, prof)
        except SnmpEngineError as exc:
            raise PollError(exc.kind, exc.message) from None
        except PollError:
            raise
        except Exception as exc:  # noqa: BLE001 - never fatal to other devices
            raise PollError("internal", f"{target.device_id}: {type(exc).__name__}: {exc}") from None

    async def poll(self, target: Target) -> list[Sample]:
        try:
            engine = self.engine_for(target)
        except SnmpEngineError as exc:  # an unknown engine name
            raise PollError(exc.kind, exc.message) from None
        except Exception as exc:  # noqa: BLE001 - never fatal to other devices
            raise PollError("internal", f"{target.device_id}: {type(exc).__name__}: {exc}") from None
        if engine.shared_socket:
            async with self._slots:
                prof, fetched = await self._fetch(engine, target)
        else:
            # no cap here: waiting for one counts against the device's deadline (a loaded shard's
            # polls timed out before they were sent); the scheduler bounds polls per protocol
            # outside the deadline and reports that wait as queue_ms
            prof, fetched = await self._fetch(engine, target)
        ts = now_ns()
        try:
            samples, problems = decode(prof, fetched, target.tags, ts, device_id=target.device_id,
                                       counters=self.counters)
        except Exception as exc:  # noqa: BLE001
            raise PollError("internal", f"{target.device_id}: decoding with {prof.name} failed: "
                                        f"{type(exc).__name__}: {exc}") from None
        if problems:
            self.known_rows.pop(target.device_id, None)  # walk again: the rows may be what changed
            kinds = [k for k, _ in problems]
            kind = "protocol" if "protocol" in kinds else kinds[0]
            msgs = [m for _, m in problems]
            more = f" (+{len(msgs) - 3} more)" if len(msgs) > 3 else ""
            raise PollError(kind, f"{target.device_id} [{prof.name}]: " + "; ".join(msgs[:3]) + more,
                            partial=samples)
        if not samples:
            self.known_rows.pop(target.device_id, None)
            if target.profile in ("", "auto"):
                self.detected.pop(target.device_id, None)   # replaced device? detect again next poll
            raise PollError("device", f"{target.device_id}: profile {prof.name} matched but the agent "
                                      f"returned none of its values")
        return samples

    async def close(self) -> None:
        for eng in self._engines.values():
            await eng.close()
        self._engines.clear()
