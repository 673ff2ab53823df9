"""Prometheus text exposition format (0.0.4) -> ``(name, labels, value)`` triples.  Pure.

Why not ``prometheus_client.parser``: it walks every label set character by
character in Python and builds ``Metric`` objects we would throw away; at
43,000 GPU nodes scraped every 10 s the parser is the collector's hot loop.
This one agrees with it on well-formed pages (tests check that, including
hypothesis-generated pages with nasty label values) and is several times faster because:

- label sets repeat (a DCGM page has one label set per GPU, repeated for every
  metric), so each distinct label text is parsed once per page and cached;
- a label text without a backslash cannot contain an escaped quote, so
  ``str.split('"')`` splits it exactly into names and values (fast path);
  only texts with a backslash take the character scan (slow path);
- metric and label names are validated once per page, not once per line.

Escapes in label values follow prometheus_client: ``\\\\`` -> ``\\``, ``\\"`` -> ``"``,
``\\n`` -> newline; any other backslash is kept as is.  Timestamps (integer
milliseconds) are accepted and validated but not returned: the collector stamps
samples with the time the reply arrived.

Errors are ``ValueError("line N: ...")`` so a bad scrape names the offending line.
"""
from __future__ import annotations

import re

__all__ = ["parse", "PromSample"]

PromSample = tuple[str, dict[str, str], float]

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def parse(body: bytes | str) -> list[PromSample]:
    """Parse a whole scrape body; raise ``ValueError('line N: ...')`` on garbage or truncation."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            line = bytes(body)[: exc.start].count(b"\n") + 1
            raise ValueError(f"line {line}: not UTF-8 (byte {exc.start})") from None
    else:
        text = body
    out: list[PromSample] = []
    append = out.append
    label_cache: dict[str, dict[str, str]] = {}
    names: set[str] = set()
    lineno = 0
    for line in text.split("\n"):
        lineno += 1
        if not line:
            continue
        if line[0] in " \t" or line[-1] in " \t\r":
            line = line.strip()
            if not line:
                continue
        if line[0] == "#":
            _comment(line, lineno)
            continue
        brace = line.find("{")
        if brace < 0:
            parts = line.split()
            name = parts[0]
            labels: dict[str, str] = {}
            rest = parts[1:]
        else:
            name = line[:brace].rstrip()
            close = line.rfind("}")
            if close < brace:
                raise ValueError(f"line {lineno}: label set not closed (truncated line?)")
            ltext = line[brace + 1 : close]
            cached = label_cache.get(ltext)
            if cached is None:
                cached = _labels(ltext, lineno)
                label_cache[ltext] = cached
            labels = cached.copy()
            rest = line[close + 1 :].split()
        if name not in names:
            if not _NAME_RE.match(name):
                raise ValueError(f"line {lineno}: invalid metric name {name[:80]!r}")
            names.add(name)
        if len(rest) == 1:
            value = _value(rest[0], lineno)
        elif len(rest) == 2:
            value = _value(rest[0], lineno)
            try:
                int(rest[1])
            except ValueError:
                raise ValueError(f"line {lineno}: timestamp {rest[1][:40]!r} is not integer milliseconds") from None
        elif not rest:
            raise ValueError(f"line {lineno}: {name} has no value (truncated line?)")
        else:
            raise ValueError(f"line {lineno}: unexpected text after value: {' '.join(rest[2:])[:80]!r}")
        append((name, labels, value))
    return out


def _value(token: str, lineno: int) -> float:
    # float() also takes "1_0", "infinity" and "nan" in any case; prometheus_client
    # rejects underscores, so do we.  Nan/Inf spellings stay as float() reads them.
    if "_" in token:
        raise ValueError(f"line {lineno}: invalid value {token[:40]!r}")
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"line {lineno}: invalid value {token[:40]!r}") from None


def _comment(line: str, lineno: int) -> None:
    """Validate ``# HELP``/``# TYPE`` lines; other comments are ignored."""
    parts = line.split(None, 3)
    if len(parts) < 2 or parts[1] not in ("HELP", "TYPE"):
        return
    if len(parts) < 3:
        # "# HELP" alone: prometheus_client ignores it, so do we
        return
    if not _NAME_RE.match(parts[2]):
        raise ValueError(f"line {lineno}: invalid metric name {parts[2][:80]!r} in # {parts[1]}")
    if parts[1] == "TYPE" and len(parts) < 4:
        raise ValueError(f"line {lineno}: # TYPE {parts[2]} without a type")


def _label_name(key: str, labels: dict[str, str], lineno: int) -> str:
    if not _LABEL_RE.match(key):
        raise ValueError(f"line {lineno}: invalid label name {key[:80]!r}")
    if key.startswith("__"):
        raise ValueError(f"line {lineno}: label name {key[:80]!r} is reserved (starts with __)")
    if key in labels:
        raise ValueError(f"line {lineno}: duplicate label {key!r}")
    return key


def _labels(text: str, lineno: int) -> dict[str, str]:
    """Parse the inside of ``{...}``."""
    labels: dict[str, str] = {}
    if "\\" not in text:
        # Fast path: no escapes, so every '"' delimits a value.
        parts = text.split('"')
        if len(parts) % 2 == 0:
            raise ValueError(f"line {lineno}: unterminated label value (truncated line?)")
        for i in range(0, len(parts) - 1, 2):
            key = parts[i].strip()
            if i:
                if not key.startswith(","):
                    raise ValueError(f"line {lineno}: expected ',' between labels, got {key[:40]!r}")
                key = key[1:].lstrip()
            if not key.endswith("="):
                raise ValueError(f"line {lineno}: expected NAME=\"value\" in labels, got {key[:40]!r}")
            labels[_label_name(key[:-1].rstrip(), labels, lineno)] = parts[i + 1]
        tail = parts[-1].strip()
        if tail and tail != ",":
            raise ValueError(f"line {lineno}: unexpected text in labels: {tail[:40]!r}")
        return labels
    return _labels_escaped(text, lineno)


def _labels_escaped(text: str, lineno: int) -> dict[str, str]:
    """Slow path: a character scan honouring backslash escapes."""
    labels: dict[str, str] = {}
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return labels
        eq = text.find("=", i)
        if eq < 0:
            raise ValueError(f"line {lineno}: expected NAME=\"value\" in labels, got {text[i:i + 40]!r}")
        key = _label_name(text[i:eq].strip(), labels, lineno)
        j = eq + 1
        while j < n and text[j] in " \t":
            j += 1
        if j >= n or text[j] != '"':
            raise ValueError(f"line {lineno}: value of label {key!r} is not quoted")
        j += 1
        buf: list[str] = []
        while True:
            q = text.find('"', j)
            if q < 0:
                raise ValueError(f"line {lineno}: unterminated value of label {key!r} (truncated line?)")
            b = text.find("\\", j, q)
            if b < 0:
                buf.append(text[j:q])
                j = q + 1
                break
            buf.append(text[j:b])
            esc = _ESCAPES.get(text[b + 1 : b + 2])
            if esc is None:
                buf.append("\\")  # unknown escape: kept verbatim, as prometheus_client does
                j = b + 1
            else:
                buf.append(esc)
                j = b + 2
        labels[key] = "".join(buf)
        while j < n and text[j] in " \t":
            j += 1
        if j < n:
            if text[j] != ",":
                raise ValueError(f"line {lineno}: expected ',' after label {key!r}, got {text[j:j + 20]!r}")
            j += 1
        i = j
