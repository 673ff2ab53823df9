"""A poll's ``gpu_node`` summary: what the derived job needs of a node's GPUs, from the poll's samples."""
from __future__ import annotations

from collectors.base import Target
from collectors.gpu.dcgm import samples_from_page
from collectors.gpu.node_summary import node_summary
from collectors.gpu.promtext import parse
from collectors.scheduler import PollOutcome, finish_poll
from contract import gpu as G
from contract.sample import Sample
from tests.gpu.dcgm_recording import BASE, PAGE, page_values


def test_summary_of_a_real_page_is_its_gpus_sum_max_and_or():
    summary = node_summary(samples_from_page(parse(PAGE.read_bytes()), BASE, 123), BASE)
    power, temps = page_values("DCGM_FI_DEV_POWER_USAGE"), page_values("DCGM_FI_DEV_GPU_TEMP")
    reasons = page_values("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS") or page_values("DCGM_FI_DEV_CLOCKS_EVENT_REASONS")
    assert len(power) == len(temps) == 8
    assert summary.measurement == G.GPU_NODE and summary.tags == BASE and summary.time_ns == 123
    f = summary.fields
    assert abs(f[G.POWER_W] - sum(power.values())) < 1e-9 and f[G.GPUS] == 8
    assert f[G.TEMP_MAX_C] == max(temps.values())
    mask = 0
    for r in reasons.values():
        mask |= int(r)
    assert f.get(G.CLOCK_EVENT_REASONS, 0) == mask
    assert f[G.GPUS_THROTTLED] == sum(1 for r in reasons.values() if int(r) & G.THERMAL_SLOWDOWN)


def _gpu(gpu: str, t: int = 5, **fields) -> Sample:
    return Sample(G.GPU, {"device": "n1", "gpu": gpu}, fields, t)


def test_a_gpu_counts_once_its_latest_reading_stands_and_every_power_series_is_summed():
    # two samples of GPU 0 (MIG instances): the later one's temperature and reasons stand, as in the job
    got = node_summary([_gpu("0", temp_c=90.0, clock_event_reasons=0x40, power_w=100.0),
                        _gpu("0", temp_c=60.0, clock_event_reasons=0, power_w=50.0),
                        _gpu("1", temp_c=70.0, clock_event_reasons=0x24, power_w=200.0, t=7),
                        Sample("node", {"device": "n1"}, {"power_w": 9999.0}, 9)], {"device": "n1"})
    assert got.fields == {G.POWER_W: 350.0, G.GPUS: 2, G.TEMP_MAX_C: 70.0, G.CLOCK_EVENT_REASONS: 0x24,
                          G.GPUS_THROTTLED: 1}
    assert got.time_ns == 7


def test_nothing_to_summarise_gives_no_sample():
    assert node_summary([], {"device": "n1"}) is None
    assert node_summary([Sample("pdu", {"device": "p"}, {"power_w": 1.0}, 1)], {"device": "p"}) is None
    assert node_summary([_gpu("0", util_pct=3.0)], {"device": "n1"}) is None
    # power alone: summed, no GPU counted as reporting
    only_power = node_summary([_gpu("0", power_w=10.0), _gpu("1", power_w=True)], {"device": "n1"})
    assert only_power.fields == {G.POWER_W: 10.0, G.GPUS: 0, G.GPUS_THROTTLED: 0}


def test_finish_poll_writes_the_summary_after_the_screen_and_does_not_count_it_as_a_sample():
    target = Target(device_id="n1", protocol="dcgm", host="127.0.0.1", port=9400, tags={"device": "n1", "site": "s"})
    samples = [_gpu("0", temp_c=3500.0, power_w=100.0), _gpu("1", temp_c=50.0, power_w=120.0)]
    out, implausible = finish_poll(target, PollOutcome(samples, True), 5)
    assert implausible == 1  # 3,500 °C: removed by the screen, so not the node's hottest
    [summary] = [s for s in out if s.measurement == G.GPU_NODE]
    assert summary.fields[G.TEMP_MAX_C] == 50.0 and summary.fields[G.POWER_W] == 220.0
    assert summary.tags == {"device": "n1", "site": "s"}
    assert out[-1].measurement == "poll" and out[-1].fields["samples"] == 2
