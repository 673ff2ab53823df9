"""Outbox order/bound/persistence, atomic state files, silences in time, corrupt state handled."""
from __future__ import annotations

import asyncio
import json

from alerts.outbox import Outbox
from alerts.rules import load_rules_text
from alerts.runtime import AlertRuntime
from alerts.silences import KEEP_ENDED_NS, Silences, parse_duration
from alerts.state_store import StateStore

S = 1_000_000_000
#: a threshold rule on PDU current, and a stale rule on it (which keeps series clocks)
HOT = "rules:\n  - name: hot\n    measurement: pdu\n    field: current_a\n    threshold: 25\n"
HOT_AND_QUIET = HOT + "  - name: quiet\n    kind: stale\n    measurement: pdu\n    field: current_a\n    stale_after_s: 60\n"


def test_outbox_keeps_order_across_reopen_and_counts_drops_at_the_bound(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite", max_messages=5)
    ob.append([(f"t/{i}", str(i).encode(), 1, False) for i in range(3)])
    ob.ack([ob.pending()[0].seq])
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite", max_messages=5)
    assert [m.topic for m in ob.pending()] == ["t/1", "t/2"]
    ob.append([(f"t/{i}", b"x", 1, i % 2 == 0) for i in range(3, 9)])
    assert len(ob) == 5 and ob.dropped == 3  # oldest went first
    assert [m.topic for m in ob.pending()] == ["t/4", "t/5", "t/6", "t/7", "t/8"]
    assert [m.retain for m in ob.pending(limit=2)] == [True, False]
    after = ob.pending()[1].seq
    assert [m.topic for m in ob.pending(after=after)] == ["t/6", "t/7", "t/8"]
    ob.close()


def test_state_store_atomic_replace_leaves_no_temp_files(tmp_path):
    st = StateStore(tmp_path)
    st.save({"a": 1})
    st.save({"a": 2})
    assert st.load() == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine-state.json"]


def test_silence_window_and_globs(tmp_path):
    s = Silences(tmp_path)
    t0 = 1_764_000_000 * S
    sil = s.add({"rule": "ups-*", "hall": "h1"}, duration_s=parse_duration("1h30m"), author="a", reason="r",
                now_ns=t0, starts_ns=t0 + 600 * S)
    ev = {"rule": "ups-on-battery", "hall": "h1", "device": "ups-1a"}
    assert s.silenced_by(ev, t0) is None  # not started
    assert s.silenced_by(ev, t0 + 601 * S) == sil.id
    assert s.silenced_by({**ev, "hall": "h2"}, t0 + 601 * S) is None
    assert s.silenced_by(ev, t0 + (600 + 5400) * S) is None  # ended
    assert s.expire(sil.id, author="b", now_ns=t0 + 700 * S)
    assert s.silenced_by(ev, t0 + 701 * S) is None
    assert [a["action"] for a in s.audit()] == ["silence", "expire"]


def _ids_in_file(d) -> list[str]:
    return [x["id"] for x in json.loads((d / "silences.json").read_text())["silences"]]


def test_engine_tick_removes_long_expired_silences_from_the_file(tmp_path):
    t0 = 1_764_000_000 * S
    cli = Silences(tmp_path)  # what `dcim alerts silence --state-dir` writes
    old = cli.add({"device": "ups-1a"}, duration_s=3600, author="a", reason="maintenance", now_ns=t0)
    recent = cli.add({"device": "ups-1b"}, duration_s=7200, author="a", reason="maintenance", now_ns=t0)
    rules = load_rules_text(HOT, "t")
    now = t0 + 3600 * S + KEEP_ENDED_NS + S  # `old` ended a day and a second ago, `recent` an hour later
    rt = AlertRuntime(None, rules, state_dir=tmp_path, mqtt=None, clock=lambda: now)
    assert _ids_in_file(tmp_path) == [old.id, recent.id]
    asyncio.run(rt.tick(now))
    assert _ids_in_file(tmp_path) == [recent.id]
    assert [a["id"] for a in Silences(tmp_path).audit() if a["action"] == "silence"] == [old.id, recent.id]


def test_pruning_keeps_a_silence_another_process_just_added(tmp_path):
    t0 = 1_764_000_000 * S
    engine_side = Silences(tmp_path)
    cli = Silences(tmp_path)
    old = cli.add({"device": "a"}, duration_s=60, author="a", reason="r", now_ns=t0)
    later = t0 + KEEP_ENDED_NS + 120 * S
    new = cli.add({"device": "b"}, duration_s=60, author="a", reason="r", now_ns=later)  # also prunes `old`
    assert _ids_in_file(tmp_path) == [new.id]
    assert engine_side.prune(later) is False  # reloads first: nothing stale written back
    assert _ids_in_file(tmp_path) == [new.id] and [s.id for s in engine_side.state.silences] == [new.id]
    assert old.id not in _ids_in_file(tmp_path)


def test_corrupt_state_is_moved_aside_and_the_engine_starts(tmp_path, caplog):
    d = tmp_path / "st"
    d.mkdir()
    (d / "engine-state.json").write_text('{"alerts": [')
    rules = load_rules_text(HOT, "t")
    rt = AlertRuntime(None, rules, state_dir=d, mqtt=None, clock=lambda: 42)
    assert rt.active() == []
    assert (d / "engine-state.json.corrupt-42").exists()
    assert "engine-state.json:1: not valid JSON" in caplog.text
    json.loads((d / "engine-state.json.corrupt-42").read_text() + "]}")  # kept as it was


def test_alert_state_files_are_private(tmp_path):
    """Outbox (and its WAL/SHM), engine state and silences: 0600 files in a 0700 directory, like the spool;
    an outbox left 0644 by an older release is tightened on open."""
    import os
    import stat

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    old = state / "outbox.sqlite"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)
    ob = Outbox(old)
    ob.append([("dcim/s/alerts/x", b"{}", 1, False)])
    StateStore(state).save({"a": 1})
    Silences(state).add({"rule": "x"}, duration_s=60, author="a", reason="r", now_ns=1)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(state) == 0o700
    files = sorted(p.name for p in state.iterdir())
    assert {"outbox.sqlite", "outbox.sqlite-wal", "outbox.sqlite-shm", "engine-state.json"} <= set(files), files
    assert {p.name: mode(p) for p in state.iterdir()} == {name: 0o600 for name in files}


def test_alerts_are_saved_on_change_and_the_series_clocks_once_a_minute(tmp_path):
    """A full-site shard sees ≈200,000 series: writing their clocks after every alert change cost
    more than the alerts.  The alerts file follows every change; the clocks file lags by at most
    ``clocks_interval_s``, is written at stop, and a restart reads both."""
    from contract.sample import Sample

    t0 = 1_764_000_000 * S
    now = [t0]
    rules = load_rules_text(HOT_AND_QUIET, "t")
    rt = AlertRuntime(None, rules, state_dir=tmp_path, mqtt=None, clock=lambda: now[0], save_interval_s=0.0,
                      clocks_interval_s=3600.0, save_duty=0)
    sample = lambda dev, amps: Sample("pdu", {"device": dev, "phase": "1"}, {"current_a": amps}, now[0])  # noqa: E731
    for i in range(5):  # five alert changes, each its own batch and tick
        now[0] += S
        rt.consume([sample(f"pdu-{i}", 30.0)])
        asyncio.run(rt.tick(now[0]))
    assert rt.store.writes == 5 and rt.store.clock_writes == 1  # the first save carried the clocks
    state = json.loads((tmp_path / "engine-state.json").read_text())
    assert len(state["alerts"]) == 5 and "seen" not in state
    clocks = json.loads((tmp_path / "engine-clocks.json").read_text())
    assert [k[1] for k, _, _ in clocks["seen"]] == ["pdu-0"]  # as of the first save
    asyncio.run(rt.stop())
    assert rt.store.clock_writes == 2
    again = AlertRuntime(None, rules, state_dir=tmp_path, mqtt=None, clock=lambda: now[0])
    assert sorted(a.device for a in again.active()) == [f"pdu-{i}" for i in range(5)]
    assert sorted(k[1][0] for k in again.engine._seen) == [f"pdu-{i}" for i in range(5)]


def test_an_unreadable_clocks_file_costs_only_the_clocks(tmp_path, caplog):
    st = StateStore(tmp_path)
    st.save({"version": 2, "alerts": [], "fails": {}})
    (tmp_path / "engine-clocks.json").write_text('{"seen": [')
    assert st.load() == {"version": 2, "alerts": [], "fails": {}}
    assert "engine-clocks.json:1: not valid JSON" in caplog.text


def test_alert_saves_take_at_most_their_duty_of_the_time_in_a_storm(tmp_path):
    """A save is O(alerts): in a storm the next one waits at least 1/save_duty times as long as
    the last one took (here a store made slow on purpose, 50 ms a save, duty 0.1: 0.5 s apart),
    and a change is still saved once that spacing has passed."""
    import time

    from contract.sample import Sample

    t0 = 1_764_000_000 * S
    now = [t0]
    rules = load_rules_text(HOT, "t")
    rt = AlertRuntime(None, rules, state_dir=tmp_path, mqtt=None, clock=lambda: now[0], save_interval_s=0.0,
                      save_duty=0.1)
    real_save = rt.store.save
    saved_at: list[float] = []

    def slow_save(snapshot):
        time.sleep(0.05)
        real_save(snapshot)
        saved_at.append(time.monotonic())

    rt.store.save = slow_save

    async def storm() -> None:
        for i in range(40):  # a new alert every tick, ticks 25 ms apart: 1 s of storm
            now[0] += S
            rt.consume([Sample("pdu", {"device": f"pdu-{i}", "phase": "1"}, {"current_a": 30.0}, now[0])])
            await rt.tick(now[0])
            await asyncio.sleep(0.025)
        while rt._save_pending:  # the last change is saved once its spacing has passed
            await asyncio.sleep(0.05)
            await rt.tick(now[0])

    asyncio.run(storm())
    gaps = [b - a for a, b in zip(saved_at, saved_at[1:])]
    assert 2 <= len(saved_at) < 10, saved_at  # 40 changes, not 40 saves
    assert min(gaps) >= 0.45  # 10 × the 50 ms a save took (less the save's own end-to-end jitter)
    state = json.loads((tmp_path / "engine-state.json").read_text())
    assert len(state["alerts"]) == 40  # nothing lost: the last save holds every alert


def test_stop_writes_the_clocks_only_when_they_fit_in_its_budget(tmp_path, caplog):
    """SIGTERM promises an exit within 10 s: the alerts are always written at stop, the series
    clocks (O(series)) only if what they took last time fits in the stop's budget; otherwise
    the file keeps the last ones (at most ``clocks_interval_s`` old) and the log says so."""
    import time

    from contract.sample import Sample

    t0 = 1_764_000_000 * S
    now = [t0]
    rules = load_rules_text(HOT_AND_QUIET, "t")

    def runtime(path):
        rt = AlertRuntime(None, rules, state_dir=path, mqtt=None, clock=lambda: now[0], save_interval_s=0.0,
                          save_duty=0)
        real = rt.store.save_clocks

        def slow_clocks(clocks):
            time.sleep(0.3)  # a full-site shard's clocks on a loaded machine, scaled down
            real(clocks)

        rt.store.save_clocks = slow_clocks
        rt.consume([Sample("pdu", {"device": "pdu-1", "phase": "1"}, {"current_a": 30.0}, now[0])])
        asyncio.run(rt.tick(now[0]))  # the first save carries the clocks: their cost is known
        assert rt.store.clock_writes == 1
        now[0] += S
        rt.consume([Sample("pdu", {"device": "pdu-2", "phase": "1"}, {"current_a": 30.0}, now[0])])
        return rt

    tight = runtime(tmp_path / "tight")
    asyncio.run(tight.stop(timeout=0.4))  # half of it, 0.2 s, is less than the 0.3 s the clocks took
    assert tight.store.clock_writes == 1 and "series clocks not written at stop" in caplog.text
    state = json.loads((tmp_path / "tight" / "engine-state.json").read_text())
    assert sorted(a["device"] for _, a in state["alerts"]) == ["pdu-1", "pdu-2"]  # the alerts always

    roomy = runtime(tmp_path / "roomy")
    asyncio.run(roomy.stop(timeout=5.0))
    assert roomy.store.clock_writes == 2
    clocks = json.loads((tmp_path / "roomy" / "engine-clocks.json").read_text())
    assert sorted(k[1] for k, _, _ in clocks["seen"]) == ["pdu-1", "pdu-2"]


def test_stop_leaves_a_slow_alerts_write_to_its_thread_and_keeps_its_budget(tmp_path, caplog):
    """An fsync that takes seconds (InfluxDB writing on the same disk) must not hold SIGTERM's
    10 s: the stop returns when its budget is spent, the write finishes in its thread, whole."""
    import threading

    from contract.sample import Sample

    now = [1_764_000_000 * S]
    rt = AlertRuntime(None, load_rules_text(HOT_AND_QUIET, "t"), state_dir=tmp_path, mqtt=None,
                      clock=lambda: now[0], save_interval_s=0.0, save_duty=0)
    release, finished = threading.Event(), threading.Event()
    real = rt.store.save

    def stuck_save(snapshot):
        release.wait(30)  # the disk answers only when the test says so
        real(snapshot)
        finished.set()

    rt.store.save = stuck_save
    rt.consume([Sample("pdu", {"device": "pdu-1", "phase": "1"}, {"current_a": 30.0}, now[0])])
    returned_before_the_write: list[bool] = []

    async def main() -> None:
        await rt.stop(timeout=0.4)
        returned_before_the_write.append(not finished.is_set())
        release.set()  # asyncio.run then waits for the worker thread to finish its write

    asyncio.run(main())
    assert returned_before_the_write == [True]
    assert "alerts snapshot not written within the stop's budget" in caplog.text
    assert finished.is_set()
    state = json.loads((tmp_path / "engine-state.json").read_text())
    assert [a["device"] for _, a in state["alerts"]] == ["pdu-1"]
