"""Request coalescing and the illegal-address fall-back plans (pure)."""
from __future__ import annotations

from collectors.modbus.collector import build_plan
from collectors.modbus.decode import Decoder
from collectors.modbus.plan import Item, plan_requests, split_request
from collectors.modbus.profile import load_profile


def item(addr: int, width: int = 1, name: str = "x") -> Item:
    dec = Decoder(field=name, type="uint16", order="ABCD", scale=1, offset=0, convert=None, enum=None,
                  bits=None, width=width, as_int=True)
    return Item(address=addr, width=width, decoder=dec, measurement="m", tags=(), index=addr)


def spans(reqs):
    return [(r.function, r.address, r.count) for r in reqs]


def test_adjacent_points_merge_into_one_read():
    reqs = plan_requests([("holding", item(0, 2)), ("holding", item(2, 2)), ("holding", item(4, 1))])
    assert spans(reqs) == [("holding", 0, 5)]
    assert [it.address for it in reqs[0].items] == [0, 2, 4]


def test_gap_filling_up_to_max_gap():
    pts = [("input", item(0, 2)), ("input", item(7, 2)), ("input", item(20, 2))]
    assert spans(plan_requests(pts, max_gap=5)) == [("input", 0, 9), ("input", 20, 2)]
    assert spans(plan_requests(pts, max_gap=11)) == [("input", 0, 22)]
    assert spans(plan_requests(pts, max_gap=0)) == [("input", 0, 2), ("input", 7, 2), ("input", 20, 2)]


def test_functions_never_mix():
    reqs = plan_requests([("holding", item(0)), ("input", item(1)), ("holding", item(1))])
    assert spans(reqs) == [("holding", 0, 2), ("input", 1, 1)]


def test_reads_never_exceed_125_registers():
    pts = [("holding", item(a, 2)) for a in range(0, 400, 2)]
    reqs = plan_requests(pts)
    assert all(r.count <= 125 for r in reqs)
    assert sum(len(r.items) for r in reqs) == 200
    assert spans(reqs)[0] == ("holding", 0, 124)  # 62 two-register points; a 63rd would make 126


def test_64bit_counter_never_split_across_reads():
    # 123 one-register points then a 4-register counter at 123: it does not fit, so it starts a new read.
    pts = [("holding", item(a)) for a in range(123)] + [("holding", item(123, 4, "energy"))]
    reqs = plan_requests(pts)
    assert spans(reqs) == [("holding", 0, 123), ("holding", 123, 4)]


def test_coils_limit_is_2000_bits():
    pts = [("coil", item(a)) for a in range(0, 4500, 3)]
    reqs = plan_requests(pts)
    assert all(r.count <= 2000 for r in reqs) and len(reqs) == 3


def test_split_drops_gap_filling_then_goes_per_point():
    req = plan_requests([("holding", item(0, 2)), ("holding", item(2, 2)), ("holding", item(10, 2))])[0]
    first = split_request(req)
    assert spans(first) == [("holding", 0, 4), ("holding", 10, 2)]
    second = split_request(first[0])
    assert spans(second) == [("holding", 0, 2), ("holding", 2, 2)]
    assert split_request(second[0]) == []


def test_profile_address_base_is_converted_once():
    # Schneider documents register 3000 for I1: the PDU address is 2999.
    plan = build_plan(load_profile("schneider_iem3000"))
    first = plan[0]
    assert (first.function, first.address) == ("holding", 2999)
    energy = [it for r in plan for it in r.items if it.decoder.field == "energy_kwh" and not it.tags]
    assert energy[0].address == 3203 and energy[0].width == 4
    # every point of the profile is in exactly one read, whole
    n = sum(len(r.items) for r in plan)
    assert n == len(load_profile("schneider_iem3000").points)
    for r in plan:
        for it in r.items:
            assert r.address <= it.address and it.address + it.width <= r.end
