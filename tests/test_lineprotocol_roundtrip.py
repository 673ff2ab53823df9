"""Line-protocol escaping, fuzzed against the real parser: influxd itself.

Whatever text a device or an inventory puts in a tag or a string field must
come back from InfluxDB exactly (newlines in tags excepted: line protocol has
no way to carry them, so they become spaces).
"""
from __future__ import annotations

import gzip
import itertools

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from contract.sample import Sample
from sinks.influx_query import InfluxQuery
from sinks.influx_transport import V1Transport
from sinks.lineprotocol import sample_line

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), min_size=1, max_size=24)


_seq = itertools.count(1)


def _expected_tag(value: str) -> str:
    return value.replace("\n", " ").replace("\r", " ").rstrip("\\")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tag=_text, text=st.text(max_size=40), number=st.floats(allow_nan=False, allow_infinity=False, width=64),
       integer=st.integers(-(2**63), 2**63 - 1))
@example(tag="\\", text="only a backslash tag: omitted", number=1.0, integer=0)
@example(tag="ends with backslash\\", text="q\\", number=0.1, integer=1)
@example(tag="a\\ b,c=d", text='say "hi"\n', number=-0.0, integer=-1)
@example(tag=" lead and trail ", text="", number=1e300, integer=2**63 - 1)
@example(tag="Tétouan ☀", text="ünïcode", number=5e-324, integer=-(2**63))
def test_any_text_round_trips_through_influxd(influx_server, influx_db, tag, text, number, integer):
    text = text.replace("\x00", "")
    device = f"fuzz{next(_seq)}"
    s = Sample("pdu", {"device": device, "label": tag}, {"s": text, "x": number, "n": integer}, 1_000_000_000)
    line = sample_line(s)
    assert line is not None
    assert "\n" not in line.split(" s=", 1)[0]  # newlines only inside the quoted string field
    transport = V1Transport(influx_server.url, influx_db)
    transport.send(gzip.compress((line + "\n").encode()))
    q = InfluxQuery(influx_server.url, influx_db)
    series = q.query(f'SELECT "s", "x", "n", "label" FROM "pdu" WHERE "device" = \'{device}\'')
    (row,) = series[0].rows()
    assert row["label"] == (_expected_tag(tag) or None)  # an empty tag is omitted
    assert row["s"] == text
    assert float(row["x"]) == number  # JSON prints whole floats without a dot
    assert row["n"] == integer
