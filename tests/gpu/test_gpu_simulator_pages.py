"""The twin's DCGM and Redfish renderings (used by ``dcim demo``) read back through the GPU mappings."""
from __future__ import annotations

import pytest

from collectors.gpu.dcgm import samples_from_page
from collectors.gpu.promtext import parse
from collectors.gpu.redfish import ResourceMissing, samples_from_resources
from simulator.http_endpoints import dcgm_page, redfish_resources
from simulator.model import DeviceState, GpuState


def _state() -> DeviceState:
    gpus = [GpuState(util=0.1 * i, power_w=100.0 + 50 * i, temp_c=30.0 + i, memory_temp_c=40.0 + i,
                     energy_mj=3.6e9 * i, xid=int(i == 5)) for i in range(8)]
    return DeviceState(power_w=6543.0, gpus=gpus)


def test_twin_dcgm_page_round_trips():
    state = _state()
    samples = samples_from_page(parse(dcgm_page("h1-r01-k01-n1", state)), {"device": "h1-r01-k01-n1"}, 1)
    by_gpu = {int(s.tags["gpu"]): s.fields for s in samples}
    assert sorted(by_gpu) == list(range(8))
    for i, g in enumerate(state.gpus):
        assert by_gpu[i]["power_w"] == pytest.approx(g.power_w, abs=1e-3)
        assert by_gpu[i]["energy_kwh"] == pytest.approx(g.energy_mj / 3.6e9)
        assert by_gpu[i]["temp_c"] == round(g.temp_c) and by_gpu[i]["memory_temp_c"] == round(g.memory_temp_c)
        assert by_gpu[i]["xid_last"] == (79 if g.xid else 0)
    assert all(s.tags["host"] == "h1-r01-k01-n1" for s in samples)


def test_twin_redfish_resources_walk():
    resources = redfish_resources("h1-r01-k01-n1", _state())

    def get(path: str) -> dict:
        if path not in resources:
            raise ResourceMissing(path)
        return resources[path]
    samples = samples_from_resources(get, {"device": "n1"}, 1)
    chassis = [s for s in samples if s.tags.get("source") == "power"]
    assert [s.fields["power_w"] for s in chassis] == [round(6543.0)]
    assert len([s for s in samples if "psu" in s.tags]) == 2 and len([s for s in samples if "fan" in s.tags]) == 4
