"""Cooling loops: which racks and devices each CDU secondary loop cools, and the checks on them.

A CDU moves heat from one or more secondary loops (the coolant through the
racks' cold plates) to its primary side (facility water from a chiller or dry
cooler, its own ``cooled_by``).  A device says which loop carries its heat with
``cooled_by: ["cdu-1:2"]`` (or inherits its rack's); a plain ``"cdu-1"`` means
the CDU's only loop.  Loop health, the per-loop alert's suppression of the GPU
alerts on it and the liquid-cooling dashboard all ask :class:`LoopIndex`, built
once per inventory load, so the full site (thousands of loops, 43,000 nodes)
is indexed in one pass and every later question is a dictionary look-up.
"""
from __future__ import annotations

from collections import defaultdict

from inventory.model import CoolingLoop, CoolRef, Device, Site
from inventory.walk import walk_devices

__all__ = ["LoopKey", "LoopIndex", "resolve_loop", "loop_problems", "loop_warnings", "loop_node"]

#: (CDU id, loop id): one secondary loop, the ``device`` and ``loop`` tags of its samples
LoopKey = tuple[str, str]


def loop_node(key: LoopKey) -> str:
    """The loop's name as people write it and as a node of the cooling graph: ``cdu-1:2``."""
    return f"{key[0]}:{key[1]}"


def resolve_loop(site: Site, ref: CoolRef) -> LoopKey | None:
    """The loop ``ref`` points at; None for a cooler that is not a CDU, or a ref the checks refuse."""
    if not site.has_device(ref.device):
        return None
    cdu = site.device(ref.device)
    if cdu.kind != "cdu":
        return None
    ids = cdu.loop_ids()
    if ref.loop is None:
        return (cdu.id, ids[0]) if len(ids) == 1 else None
    return (cdu.id, ref.loop) if ref.loop in ids else None


class LoopIndex:
    """Every CDU loop of a site with the racks, devices and GPU nodes on it (one pass over the site)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._loops: dict[LoopKey, CoolingLoop] = {}
        for dev in site.all_devices():
            if dev.kind == "cdu":
                for lp in dev.loops or [CoolingLoop(id=dev.loop_ids()[0])]:
                    self._loops.setdefault((dev.id, lp.id), lp)
        devices: dict[LoopKey, list[str]] = defaultdict(list)
        racks: dict[LoopKey, dict[str, None]] = defaultdict(dict)
        of: dict[str, list[LoopKey]] = {}
        for dev in site.all_devices():
            keys = self._keys(dev.cooling())
            if keys:
                of[dev.id] = keys
                for key in keys:
                    devices[key].append(dev.id)
                    if dev.rack:
                        racks[key][dev.rack] = None
        for _, _, rack in site.racks():
            for key in self._keys(rack.cooled_by):
                racks[key][rack.id] = None
        self._devices = dict(devices)
        self._racks = {k: list(v) for k, v in racks.items()}
        self._of = of

    def _keys(self, refs: list[CoolRef]) -> list[LoopKey]:
        out: list[LoopKey] = []
        for ref in refs:
            key = resolve_loop(self.site, ref)
            if key is not None and key not in out:
                out.append(key)
        return out

    def loops(self) -> list[LoopKey]:
        """Every loop, CDU by CDU in file order."""
        return list(self._loops)

    def loop(self, key: LoopKey) -> CoolingLoop:
        """The loop's design point (an implicit loop has none)."""
        return self._loops[key]

    def loops_of_cdu(self, cdu_id: str) -> list[LoopKey]:
        return [k for k in self._loops if k[0] == cdu_id]

    def loops_of(self, device_id: str) -> list[LoopKey]:
        """The loops that carry ``device_id``'s heat (own ``cooled_by`` or its rack's)."""
        return self._of.get(device_id, [])

    def devices_on(self, key: LoopKey) -> list[str]:
        """Every device on the loop, in file order."""
        return self._devices.get(key, [])

    def gpu_nodes_on(self, key: LoopKey) -> list[Device]:
        """The GPU nodes on the loop: whose power is the loop's IT heat, whose GPUs it keeps cool."""
        return [d for d in (self.site.device(i) for i in self.devices_on(key)) if d.kind == "gpu_node"]

    def racks_on(self, key: LoopKey) -> list[str]:
        """Racks on the loop: named by the rack's ``cooled_by`` or holding a device on it."""
        return self._racks.get(key, [])


def _ref_problem(site: Site, owner: str, ref: CoolRef) -> str | None:
    """Why ``ref`` (in ``owner``'s or its rack's ``cooled_by``) is refused, or None."""
    if ref.device == owner:
        return "a device cannot cool itself"
    if not site.has_device(ref.device):
        return f"no device {ref.device!r}"
    cooler = site.device(ref.device)
    if cooler.kind != "cdu":
        if ref.loop is not None:
            return (f"{cooler.id!r} is a {cooler.kind}, not a CDU: only a CDU has loops "
                    f"(write {cooler.id!r})")
        return None
    ids = cooler.loop_ids()
    if ref.loop is None and len(ids) > 1:
        return (f"{cooler.id!r} has {len(ids)} loops ({', '.join(ids)}): name one, "
                f"e.g. '{cooler.id}:{ids[0]}'")
    if ref.loop is not None and ref.loop not in ids:
        return f"{cooler.id!r} has no loop {ref.loop!r} (its loops: {', '.join(ids)})"
    return None


def loop_problems(site: Site) -> list[tuple[tuple, str]]:
    """``(inventory path, message)`` for each refused loop declaration or cooling reference."""
    problems: list[tuple[tuple, str]] = []
    for path, dev, *_ in walk_devices(site):
        if dev.loops and dev.kind != "cdu":
            problems.append((path + ("loops",), f"loops: applies to kind: cdu only (this is a {dev.kind})"))
        seen: set[str] = set()
        for i, lp in enumerate(dev.loops):
            if lp.id in seen:
                problems.append((path + ("loops", i, "id"), f"duplicate loop id {lp.id!r} on {dev.id!r}"))
            seen.add(lp.id)
        for i, ref in enumerate(dev.cooled_by):
            msg = _ref_problem(site, dev.id, ref)
            if msg:
                problems.append((path + ("cooled_by", i), msg))
    for hi, hall in enumerate(site.halls):
        for ri, row in enumerate(hall.rows):
            for ki, rack in enumerate(row.racks):
                for i, ref in enumerate(rack.cooled_by):
                    msg = _ref_problem(site, "", ref)
                    if msg:
                        problems.append((("halls", hi, "rows", ri, "racks", ki, "cooled_by", i), msg))
    return problems


def loop_warnings(site: Site, index: LoopIndex | None = None) -> list[tuple[tuple, str]]:
    """What ``dcim inventory check`` warns about without refusing the file.

    A CDU with no primary side (no ``cooled_by``) is a warning, not an error: a
    small site or a lab rig may not model its facility water, and nothing
    downstream breaks; it only means a chiller fault cannot explain the loop's
    alerts.  A loop whose racks' ``rated_kw`` add up to more than its own
    ``rated_kw`` is a warning too: racks rarely run at their rating, but the
    planner should see it.
    """
    index = index or LoopIndex(site)
    out: list[tuple[tuple, str]] = []
    for path, dev, *_ in walk_devices(site):
        if dev.kind != "cdu":
            continue
        if not dev.cooled_by:
            out.append((path + ("cooled_by",), f"CDU {dev.id!r} has no primary side: name the chiller or "
                                                "dry cooler whose facility water cools it in cooled_by"))
        for i, lp in enumerate(dev.loops):
            if lp.rated_kw is None:
                continue
            racks = index.racks_on((dev.id, lp.id))
            total = sum(site.rack(r).rated_kw or 0.0 for r in racks)
            if total > lp.rated_kw:
                out.append((path + ("loops", i, "rated_kw"),
                            f"loop {dev.id}:{lp.id} is rated {lp.rated_kw:g} kW but its {len(racks)} rack(s) "
                            f"are rated {total:g} kW together"))
    return out
