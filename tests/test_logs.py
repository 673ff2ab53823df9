"""dcim.logs: repeats held back and counted, libraries one line, Rust panics one line."""
from __future__ import annotations

import io
import logging
import os
import threading

from dcim.logs import Cap, OneLine, _pump


def _handler(clock):
    out = io.StringIO()
    h = logging.StreamHandler(out)
    h.setFormatter(OneLine("%(levelname)s %(name)s: %(message)s"))
    h.addFilter(Cap(60.0, clock=clock))
    return h, out


def _logger(name: str, h: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [h]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log


def test_repeats_within_the_window_are_counted_on_the_next_line():
    now = [0.0]
    h, out = _handler(lambda: now[0])
    log = _logger("dcim.test_logs.sched", h)
    for i in range(5):
        log.warning("%s: poll failed (%s): %s", "pdu-1", "protocol", f"bad byte {i}")
    log.warning("%s: poll failed (%s): %s", "pdu-2", "protocol", "bad byte")   # another device: its own line
    log.warning("%s: poll failed (%s): %s", "pdu-1", "timeout", "silence")     # another kind: its own line
    now[0] = 61.0
    log.warning("%s: poll failed (%s): %s", "pdu-1", "protocol", "bad byte 9")
    lines = out.getvalue().splitlines()
    assert lines == ["WARNING dcim.test_logs.sched: pdu-1: poll failed (protocol): bad byte 0",
                     "WARNING dcim.test_logs.sched: pdu-2: poll failed (protocol): bad byte",
                     "WARNING dcim.test_logs.sched: pdu-1: poll failed (timeout): silence",
                     "WARNING dcim.test_logs.sched: pdu-1: poll failed (protocol): bad byte 9 (+4 like this since)"]


def test_a_library_gets_one_short_line_without_its_traceback_or_frame_dump():
    h, out = _handler(lambda: 0.0)
    log = _logger("pymodbus.logging", h)
    log.error("Invalid Modbus protocol id: 1\n>>>>> send: 0x0 0x16 0x0\n>>>>> recv: " + "0x0 " * 500)
    log.error("Frame check failed, ignoring!!")  # same library and level within the window: held back
    try:
        raise ValueError("x" * 5000)
    except ValueError:
        _logger("asyncio", h).exception("Exception in callback")
    lines = out.getvalue().splitlines()
    assert lines[0] == "ERROR pymodbus.logging: Invalid Modbus protocol id: 1"
    assert len(lines) == 2 and "Traceback" not in out.getvalue()
    assert lines[1].startswith("ERROR asyncio: Exception in callback (ValueError: xxx") and len(lines[1]) < 260


def test_a_rust_panic_with_its_backtrace_becomes_one_log_line(caplog):
    text = ("before\n"
            "thread '<unnamed>' (13782) panicked at src/ber/header.rs:96:35:\n"
            "index out of bounds: the len is 48 but the index is 48\n"
            "stack backtrace:\n   0: __rustc::rust_begin_unwind\n   1: core::panicking::panic_fmt\n"
            "             at /rustc/library/core/src/panicking.rs:75:14\n"
            "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n"
            "after\n")
    src_r, src_w = os.pipe()
    real_r, real_w = os.pipe()
    caplog.set_level(logging.WARNING, logger="dcim.native")
    t = threading.Thread(target=_pump, args=(src_r, real_w))
    t.start()
    os.write(src_w, text.encode())
    os.close(src_w)
    t.join(10)
    os.close(real_w)
    passed = os.read(real_r, 65536).decode()
    os.close(real_r)
    assert passed == "before\nafter\n"
    assert [r.getMessage() for r in caplog.records if r.name == "dcim.native"] == [
        "native code panicked (a reply it could not parse): index out of bounds: the len is 48 but the index is 48 "
        "at src/ber/header.rs:96:35"]
