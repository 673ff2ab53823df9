"""The one walk of the device tree: site -> halls -> rows -> racks -> devices.

Devices sit at four levels (site, hall, row, rack).  Everything that visits
every device (the site index, the reference checks, the generator's fast path
over plain dicts, and through them the twin) goes through :func:`walk_devices`,
so a new level or a new place for devices is added once.
"""
from __future__ import annotations

from typing import Any, Iterator

__all__ = ["walk_devices"]


def _items(node: Any, key: str) -> list:
    if isinstance(node, dict):
        return node.get(key) or []
    return getattr(node, key)


def walk_devices(site: Any) -> Iterator[tuple[tuple, Any, Any, Any, Any]]:
    """``(path, device, hall, row, rack)`` for every device, in file order.

    ``site`` is a validated :class:`inventory.model.Site` or the generator's
    plain dicts (same keys); ``path`` is the device's place in the file, e.g.
    ``("halls", 0, "rows", 2, "racks", 3, "devices", 0)``; hall, row and rack are
    the enclosing nodes, ``None`` above the device's level.
    """
    for di, dev in enumerate(_items(site, "devices")):
        yield ("devices", di), dev, None, None, None
    for hi, hall in enumerate(_items(site, "halls")):
        for di, dev in enumerate(_items(hall, "devices")):
            yield ("halls", hi, "devices", di), dev, hall, None, None
        for ri, row in enumerate(_items(hall, "rows")):
            for di, dev in enumerate(_items(row, "devices")):
                yield ("halls", hi, "rows", ri, "devices", di), dev, hall, row, None
            for ki, rack in enumerate(_items(row, "racks")):
                for di, dev in enumerate(_items(rack, "devices")):
                    yield ("halls", hi, "rows", ri, "racks", ki, "devices", di), dev, hall, row, rack
