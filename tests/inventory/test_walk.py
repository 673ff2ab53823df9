"""The one device-tree walk: the same devices, paths and places for a validated site and for plain data."""
from __future__ import annotations

from inventory.generate import SiteShape, generate_site, iter_devices
from inventory.loader import load_site
from inventory.model import Site
from inventory.walk import walk_devices

SMALL = SiteShape(halls=2, rows_per_hall=2, racks_per_row=2, nodes_per_rack=2, ups_per_hall=2, cdus_per_hall=1,
                  crahs_per_hall=1, chillers_per_hall=1)


def _at(data, path):
    for part in path:
        data = data[part]
    return data


def test_walk_over_plain_data_and_the_model_agree_and_paths_point_at_the_device():
    data = generate_site(SMALL)
    site = Site.model_validate(data)
    plain = [(path, dev["id"]) for path, dev, *_ in walk_devices(data)]
    model = [(path, dev.id) for path, dev, *_ in walk_devices(site)]
    assert plain == model
    assert len({p for p, _ in plain}) == len(plain) > 20
    assert {p[0] for p, _ in plain} == {"devices", "halls"} and any(len(p) == 8 for p, _ in plain)  # every level
    for path, dev_id in plain:
        assert _at(data, path)["id"] == dev_id
        assert site.device_path(dev_id) == path  # the site index is built from the same walk
    assert [d["id"] for d in iter_devices(data)] == [i for _, i in plain]


def test_every_device_knows_its_hall_row_and_rack_from_the_walk():
    site = load_site("inventory/examples/tetouan.yaml")
    for _, dev, hall, row, rack in walk_devices(site):
        placed = site.device(dev.id)
        assert (placed.hall, placed.row, placed.rack) == tuple(None if n is None else n.id for n in (hall, row, rack))
