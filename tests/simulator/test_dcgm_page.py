"""The twin's DCGM page: the text it has always served, and values the collector reads back as the model's.

``dcgm_page`` formats a whole page with one ``%`` on a per-node template (the twin's cost per
scrape); ``_reference_page`` below is the straightforward per-line formatting it replaced, kept
here as the specification of each line's text, so any drift in a value's format, a label or a
line's order fails the byte comparison.  The round trip then parses pages of the real model's
states (jobs on the GPUs, a thermal fault) with the collector's own decoder.
"""
from __future__ import annotations

import random

import pytest

from collectors.gpu.dcgm import samples_from_page
from collectors.gpu.promtext import parse
from simulator.http_endpoints import _METRICS, _uuid, dcgm_page
from simulator.model import DeviceState, GpuState, SiteModel

_REFERENCE_VALUES = (
    lambda g: f"{g.temp_c:.0f}", lambda g: f"{g.memory_temp_c:.0f}", lambda g: f"{g.power_w:.3f}",
    lambda g: f"{int(g.energy_mj)}", lambda g: f"{round(g.util * 100)}", lambda g: f"{round(g.util * 40)}",
    lambda g: f"{g.sm_clock_mhz:.0f}", lambda g: f"{int(2000 + g.util * 70000)}",
    lambda g: f"{int(79000 - g.util * 70000)}", lambda g: "79" if g.xid else "0", lambda g: str(g.clock_reasons),
)


def _reference_page(node: str, s: DeviceState, model_name: str = "NVIDIA H100 80GB HBM3") -> bytes:
    """The page line by line: per metric its HELP and TYPE, then one line per GPU."""
    out = []
    for (name, kind, help_text), value in zip(((m[0], m[1], m[2]) for m in _METRICS), _REFERENCE_VALUES, strict=True):
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        for i, g in enumerate(s.gpus):
            labels = (f'gpu="{i}",UUID="{_uuid(node, i)}",pci_bus_id="00000000:{0x53 + 0x11 * i:02X}:00.0",'
                      f'device="nvidia{i}",modelName="{model_name}",Hostname="{node}"'
                      + "".join(f',{k}="{v}"' for k, v in g.labels))
            out.append(f"{name}{{{labels}}} {value(g)}\n")
    return "".join(out).encode()


def _random_state(rng: random.Random, n_gpus: int) -> DeviceState:
    job = (("namespace", "tenant-a"), ("pod", f"train-{rng.randrange(99)}-n1"), ("container", "main"))
    edge = [0.0, 0.5, 1.5, 2.5, 0.0005, 0.0015, 699.9995, 1e13 + 0.5]  # halves: the rounding rule shows
    gpus = []
    for _ in range(n_gpus):
        pick = (lambda lo, hi: rng.choice(edge) if rng.random() < 0.2 else rng.uniform(lo, hi))
        gpus.append(GpuState(util=rng.choice([0.0, 1.0, 0.005, 0.0125, rng.random()]), power_w=pick(40, 720),
                             temp_c=pick(20, 95), memory_temp_c=pick(20, 100), energy_mj=pick(0, 4e12),
                             xid=rng.choice([0, 0, 79, 13]), clock_reasons=rng.choice([0, 0x4, 0x20, 0x60]),
                             sm_clock_mhz=pick(300, 1980), labels=rng.choice([(), job])))
    return DeviceState(power_w=sum(g.power_w for g in gpus), gpus=gpus)


def test_page_text_equals_the_line_by_line_reference_on_random_states():
    rng = random.Random(20261202)
    for k in range(400):
        state = _random_state(rng, rng.choice([8, 8, 4, 1]))
        node = f"h{k % 3 + 1}-r01-k{k % 7:02d}-n{k % 5}"
        model = "NVIDIA H100 80GB HBM3" if k % 2 else "NVIDIA H200 141GB HBM3e"
        assert dcgm_page(node, state, model) == _reference_page(node, state, model), k


def test_a_percent_sign_in_a_label_is_text_not_a_placeholder():
    state = _random_state(random.Random(7), 2)
    state.gpus[0].labels = (("pod", "odd-100%-name"),)
    assert dcgm_page("n%d-1", state, "GPU 50%") == _reference_page("n%d-1", state, "GPU 50%")


def test_model_states_read_back_by_the_collectors_decoder(twin_site):
    """Pages of the real model (jobs, idle GPUs, a hot GPU) through promtext + the DCGM mapping."""
    model = SiteModel(twin_site, seed=3)
    t0 = 1_780_000_000.0
    model.step(t0)
    nodes = [d.id for d in twin_site.polled_devices() if d.kind == "gpu_node"]
    model.inject("gpu_overtemp", nodes[0])
    model.step(t0 + 60)
    checked = labelled = 0
    for node in nodes:
        state = model.state[node]
        page = dcgm_page(node, state)
        assert page == _reference_page(node, state)
        samples = samples_from_page(parse(page), {"device": node}, 1, gpus_expected=len(state.gpus))
        by_gpu = {int(s.tags["gpu"]): s for s in samples}
        assert sorted(by_gpu) == list(range(len(state.gpus)))
        for i, g in enumerate(state.gpus):
            f, tags = by_gpu[i].fields, by_gpu[i].tags
            assert f["power_w"] == pytest.approx(g.power_w, abs=5e-4)
            assert f["energy_kwh"] == pytest.approx(int(g.energy_mj) / 3.6e9)
            assert f["temp_c"] == round(g.temp_c) and f["memory_temp_c"] == round(g.memory_temp_c)
            assert f["util_pct"] == round(g.util * 100) and f["sm_clock_mhz"] == round(g.sm_clock_mhz)
            assert f["xid_last"] == (79 if g.xid else 0) and f["clock_event_reasons"] == g.clock_reasons
            for k, v in g.labels:
                assert tags.get(k) == v, (node, i, k)
            labelled += bool(g.labels)
            checked += 1
    assert checked >= 8 and labelled  # some GPUs ran a job
    assert any(g.clock_reasons & 0x40 for g in model.state[nodes[0]].gpus)  # the fault's GPU is on the page
