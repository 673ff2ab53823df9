"""Logs that stay useful while devices attack: one line per thing per minute, with a count.

A site with a few devices answering garbage must not fill the disk with the
same line, a library's hex dump or a Rust backtrace.  :func:`setup` installs:

- :class:`Cap`: a filter on the handler.  A record is keyed by its logger, level
  and message template (and its text arguments: a device id, a failure kind);
  the first of a key is written, repeats within ``every_s`` are only counted
  and the next written line says ``(+N like this since)``.  Libraries
  (pymodbus, pysnmp, gufo, asyncio, urllib3, …) are keyed by logger and level
  alone, since they format their own text, and lose their tracebacks (one
  line: the exception's type and message).
- :class:`OneLine`: every message on one line, cut at :data:`MAX_CHARS`
  (:data:`LIBRARY_CHARS` for libraries: no reply bodies, no hex dumps).
- :func:`route_native_stderr`, for the long-running commands: native code
  (gufo-snmp's Rust) writes panics straight to file descriptor 2, a backtrace
  each when ``RUST_BACKTRACE`` is set; its output goes through a pipe where a
  panic becomes one capped log line and everything else passes unchanged.
"""
from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
import time

__all__ = ["setup", "Cap", "OneLine", "route_native_stderr", "MAX_CHARS", "LIBRARIES"]

MAX_CHARS = 500
#: a library's line is cut shorter: pymodbus appends the frames it sent and received
LIBRARY_CHARS = 200
#: library loggers capped to WARNING (and one line per level per minute)
LIBRARIES = ("pymodbus", "pysnmp", "pyasn1", "gufo", "gufo_snmp", "asyncio", "urllib3", "redfish", "aiohttp",
             "paho", "hpack", "h2")


def _own(name: str) -> bool:
    return name == "dcim" or name.startswith("dcim.")


class Cap(logging.Filter):
    """At most one record per key per ``every_s``; the next one carries the count of those held back."""

    def __init__(self, every_s: float = 60.0, clock=time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._seen: dict[tuple, list] = {}  # key -> [last written, held back]
        self._lock = threading.Lock()

    def key(self, record: logging.LogRecord) -> tuple:
        if not _own(record.name):
            return (record.name.split(".")[0], record.levelno)
        args = record.args if isinstance(record.args, tuple) else ()
        # the first two text arguments (by convention a device id and a failure kind); the rest varies
        return (record.name, record.levelno, record.msg, tuple(a for a in args if isinstance(a, str))[:2])

    def filter(self, record: logging.LogRecord) -> bool:
        key = self.key(record)
        now = self.clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.every_s:
                entry[1] += 1
                return False
            held = entry[1] if entry is not None else 0
            if len(self._seen) > 50_000:  # bounded memory whatever the keys
                self._seen.clear()
            self._seen[key] = [now, 0]
        if held:
            record.dcim_held = held
        if not _own(record.name) and record.exc_info:
            exc = record.exc_info[1]
            record.exc_info, record.exc_text = None, None
            record.dcim_exc = f"{type(exc).__name__}: {exc}"
        return True


class OneLine(logging.Formatter):
    """One line per record, at most :data:`MAX_CHARS` of message, held-back count appended."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = getattr(record, "dcim_exc", "")
        if extra:
            text += f" ({extra})"
        held = getattr(record, "dcim_held", 0)
        head, sep, tail = text.partition("\nTraceback")  # our own bugs keep their traceback
        if not _own(record.name):
            head = head.split("\n", 1)[0]  # pymodbus puts the frames it sent and received on the next lines
        head = head.replace("\r", " ").replace("\n", " | ")
        limit = MAX_CHARS if _own(record.name) else LIBRARY_CHARS  # a library's text may carry a hex dump
        if len(head) > limit:
            head = head[:limit] + f"… [{len(head) - limit} more characters]"
        if held:
            head += f" (+{held} like this since)"
        return head + (sep + tail if sep and _own(record.name) else "")


def setup(level: int, *, every_s: float | None = None, stream=None) -> None:
    """Root logging for the ``dcim`` command: one-line, capped, libraries at WARNING unless debugging.

    ``every_s`` (default 60, or ``DCIM_LOG_REPEAT_S``): how long a repeated line is held back.
    """
    if every_s is None:
        try:
            every_s = max(0.0, float(os.environ.get("DCIM_LOG_REPEAT_S", "60")))
        except ValueError:
            every_s = 60.0
    root = logging.getLogger()
    if not root.handlers:  # like logging.basicConfig: a host that set up logging (pytest) keeps its own
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(OneLine("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(Cap(every_s))
        root.addHandler(handler)
        root.setLevel(level)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)


_PANIC = re.compile(r"^thread '([^']*)'(?: \(\d+\))? panicked at (.*?):?$")
_BACKTRACE = re.compile(r"^(note: run with `RUST_BACKTRACE|note: Some details are omitted|stack backtrace:|\s+\d+: |\s+at )")


def route_native_stderr() -> None:
    """Send file descriptor 2 through a filter thread (see the module docstring); Python keeps the real stderr.

    Call before logging is set up, so handlers write to the new ``sys.stderr``.
    """
    try:
        real = os.dup(2)
        r, w = os.pipe()
    except OSError:
        return
    sys.stderr = io.TextIOWrapper(os.fdopen(real, "wb", buffering=0), encoding="utf-8", errors="replace",
                                  line_buffering=True, write_through=True)
    os.dup2(w, 2)
    os.close(w)
    threading.Thread(target=_pump, args=(r, real), name="native-stderr", daemon=True).start()


def _pump(r: int, real: int) -> None:
    log = logging.getLogger("dcim.native")
    skipping = False
    panic: tuple[str, str] | None = None
    with os.fdopen(r, "rb") as src:
        for raw in src:
            try:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                m = _PANIC.match(line)
                if m:
                    panic, skipping = (m.group(1), m.group(2)), True
                    continue
                if panic is not None:  # the line after the header is the panic message
                    log.warning("native code panicked (a reply it could not parse): %s at %s", line.strip()[:200],
                                panic[1][:200])
                    panic = None
                    continue
                if skipping and (_BACKTRACE.match(line) or not line.strip()):
                    continue
                skipping = False
                os.write(real, raw)
            except Exception:  # noqa: BLE001 - never lose stderr because the filter failed
                try:
                    os.write(real, raw)
                except OSError:  # the real stderr is gone (closed pipe): keep draining, or writers block
                    pass
