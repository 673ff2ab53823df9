"""``escape_key``'s fast path (text that needs no escaping is returned as it is) gives exactly what
the full escape gives, on random text over an alphabet dense in what must be escaped."""
from __future__ import annotations

import random

from sinks.lineprotocol import _KEY, escape_key


def _full(text: str) -> str:
    out = text.translate(_KEY)
    return out.rstrip("\\") if out[-1:] == "\\" else out


def test_escape_key_fast_path_agrees_with_the_full_escape():
    rnd = random.Random(7)
    alphabet = "ab-_.:/0,= \\\n\r\"é"
    texts = ["", "h01-r01-k01-n01", "a\\", "a\\\\", "a b", "a,b", "a=b", "a\nb", "a\rb", "\\"]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12))) for _ in range(20_000)]
    plain = 0
    for text in texts:
        assert escape_key(text) == _full(text), repr(text)
        plain += escape_key(text) is text
    assert 0 < plain < len(texts)  # both paths were taken
