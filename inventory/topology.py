"""The power and cooling chains as a graph, and the cross-reference checks.

Edges point downstream: ``ups-1a -> pdu-a`` when ``pdu-a`` says ``fed_by: [ups-1a]``.
A GPU node placed in a rack without its own ``fed_by`` is fed by that rack's
PDUs (the usual case: nodes plug into the rack's PDUs).  Alert suppression,
derived metrics and reports all walk this one graph.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property

from contract.protocols import PROTOCOLS
from inventory.loops import loop_problems
from inventory.model import ROOT_KINDS, Device, Site
from inventory.schema import format_path
from inventory.walk import walk_devices

__all__ = ["PowerGraph", "Problem", "check_references", "endpoint_key"]

_PDU_KINDS = frozenset({"pdu", "rpp", "busway"})
_LOAD_KINDS_IN_RACK = frozenset({"gpu_node", "server", "switch"})


@dataclass(frozen=True, slots=True)
class Problem:
    path: tuple
    message: str


class PowerGraph:
    """Upstream/downstream queries over the inventory's power and cooling chain."""

    def __init__(self, site: Site) -> None:
        self.site = site
        up: dict[str, list[str]] = defaultdict(list)
        cool_up: dict[str, list[str]] = defaultdict(list)
        rack_pdus: dict[str, list[str]] = defaultdict(list)
        for dev in site.all_devices():
            if dev.rack and dev.kind in _PDU_KINDS:
                rack_pdus[dev.rack].append(dev.id)
        for dev in site.all_devices():
            feeds = dev.feed_ids()
            if not feeds and dev.rack and dev.kind in _LOAD_KINDS_IN_RACK:
                feeds = rack_pdus.get(dev.rack, [])
            up[dev.id] = [f for f in feeds if site.has_device(f)]
            cool_up[dev.id] = [c for c in dev.cooler_ids() if site.has_device(c)]
        self._up = dict(up)
        self._cool_up = dict(cool_up)
        self.rack_pdus = dict(rack_pdus)
        down: dict[str, list[str]] = defaultdict(list)
        for child, parents in list(self._up.items()) + list(self._cool_up.items()):
            for p in parents:
                down[p].append(child)
        self._down = dict(down)

    def upstream(self, device_id: str) -> list[str]:
        """Direct power feeds of a device."""
        return self._up.get(device_id, [])

    def cooled_by(self, device_id: str) -> list[str]:
        return self._cool_up.get(device_id, [])

    def children(self, device_id: str) -> list[str]:
        """Direct dependants (power or cooling)."""
        return self._down.get(device_id, [])

    def downstream(self, device_id: str) -> set[str]:
        """Every device that depends on ``device_id`` for power or cooling, transitively."""
        seen: set[str] = set()
        stack = list(self.children(device_id))
        while stack:
            d = stack.pop()
            if d not in seen:
                seen.add(d)
                stack.extend(self.children(d))
        return seen

    def ancestors(self, device_id: str) -> set[str]:
        """Every device upstream of ``device_id`` (power and cooling)."""
        seen: set[str] = set()
        stack = list(self.upstream(device_id)) + list(self.cooled_by(device_id))
        while stack:
            d = stack.pop()
            if d not in seen:
                seen.add(d)
                stack.extend(self.upstream(d))
                stack.extend(self.cooled_by(d))
        return seen

    def find_cycle(self) -> list[str] | None:
        """A power-chain cycle as a list of ids, or None."""
        white, grey, black = 0, 1, 2
        colour: dict[str, int] = {d: white for d in self._up}
        for start in self._up:
            if colour[start] != white:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            trail: list[str] = []
            while stack:
                node, i = stack.pop()
                if i == 0:
                    colour[node] = grey
                    trail.append(node)
                parents = self._up.get(node, [])
                if i < len(parents):
                    stack.append((node, i + 1))
                    nxt = parents[i]
                    if colour.get(nxt, black) == grey:
                        return trail[trail.index(nxt):] + [nxt]
                    if colour.get(nxt) == white:
                        stack.append((nxt, 0))
                else:
                    colour[node] = black
                    trail.pop()
        return None

    @cached_property
    def depth(self) -> int:
        """Longest feed chain, counted in devices (utility -> ... -> node)."""
        memo: dict[str, int] = {}

        def d(dev_id: str, guard: frozenset = frozenset()) -> int:
            if dev_id in memo:
                return memo[dev_id]
            if dev_id in guard:
                return 0
            parents = self._up.get(dev_id, [])
            value = 1 + max((d(p, guard | {dev_id}) for p in parents), default=0)
            memo[dev_id] = value
            return value

        return max((d(x) for x in self._up), default=0)

    def orphans(self) -> list[Device]:
        """Devices that should hang off something but do not (warnings, not errors)."""
        out = []
        for dev in self.site.all_devices():
            if dev.kind in ROOT_KINDS or dev.kind == "env_sensor":
                continue
            if dev.kind == "meter":
                if dev.meter is not None and dev.meter.role in ("water", "fuel"):
                    continue  # measures water or fuel, not a point in the power chain
                if not dev.measures and not dev.fed_by:
                    out.append(dev)
                continue
            if not self.upstream(dev.id):
                out.append(dev)
        return out


def check_references(site: Site) -> list[Problem]:
    """Cross-reference errors: duplicate ids, dangling feeds, cycles, unknown credentials."""
    problems: list[Problem] = []
    # duplicate ids (devices) and duplicate rack/row/hall ids
    seen: dict[str, tuple] = {}
    for path, dev, *_ in walk_devices(site):
        if dev.id in seen:
            problems.append(Problem(path + ("id",), f"duplicate device id {dev.id!r} (first defined at {format_path(seen[dev.id])})"))
        else:
            seen[dev.id] = path
    for label, ids in (
        ("hall", [(("halls", hi), h.id) for hi, h in enumerate(site.halls)]),
        ("row", [(("halls", hi, "rows", ri), r.id) for hi, h in enumerate(site.halls) for ri, r in enumerate(h.rows)]),
        ("rack", [(("halls", hi, "rows", ri, "racks", ki), k.id) for hi, h in enumerate(site.halls)
                  for ri, r in enumerate(h.rows) for ki, k in enumerate(r.racks)]),
    ):
        counts = Counter(i for _, i in ids)
        for path, i in ids:
            if counts[i] > 1:
                problems.append(Problem(path + ("id",), f"duplicate {label} id {i!r}"))
                counts[i] = 1  # report the later ones once each
    creds = site.credentials
    for proto, name in site.defaults.credentials.items():
        if name not in creds:
            problems.append(Problem(("defaults", "credentials", proto), f"unknown credential set {name!r}"))
    for path, dev, *_ in walk_devices(site):
        for i, feed in enumerate(dev.fed_by):
            if feed.device == dev.id:
                problems.append(Problem(path + ("fed_by", i), "a device cannot feed itself"))
            elif not site.has_device(feed.device):
                problems.append(Problem(path + ("fed_by", i), f"feed points nowhere: no device {feed.device!r}"))
        if dev.measures and not site.has_device(dev.measures):
            problems.append(Problem(path + ("measures",), f"no device {dev.measures!r}"))
        if dev.credentials and dev.credentials not in creds:
            problems.append(Problem(path + ("credentials",), f"unknown credential set {dev.credentials!r} (defined: {', '.join(sorted(creds)) or 'none'})"))
    problems += [Problem(path, msg) for path, msg in loop_problems(site)]
    problems += _endpoint_problems(site)
    problems += _tenant_problems(site)
    if not problems:
        cycle = PowerGraph(site).find_cycle()
        if cycle:
            first = cycle[0]
            problems.append(Problem(site.device_path(first) + ("fed_by",), "power chain has a cycle: " + " <- ".join(cycle)))
    return problems


def _tenant_problems(site: Site) -> list[Problem]:
    """Tenant ids are distinct and a namespace belongs to one tenant: its energy is billed once."""
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    owner: dict[str, str] = {}
    for ti, t in enumerate(site.tenants):
        if t.id in ids:
            problems.append(Problem(("tenants", ti, "id"), f"duplicate tenant id {t.id!r} (first at tenants[{ids[t.id]}])"))
        ids.setdefault(t.id, ti)
        for ni, ns in enumerate(t.namespaces):
            if not ns:
                problems.append(Problem(("tenants", ti, "namespaces", ni), "an empty namespace name"))
            elif ns in owner:
                problems.append(Problem(("tenants", ti, "namespaces", ni),
                                        f"namespace {ns!r} already belongs to tenant {owner[ns]!r}: a namespace "
                                        "is billed to one tenant"))
            else:
                owner[ns] = t.id
    return problems


#: how a protocol reaches its device: the socket type its endpoint is bound with
_TRANSPORT = {n: p.transport for n, p in PROTOCOLS.items() if p.needs_host}
#: protocols addressing units behind one endpoint
_MODBUS = frozenset(n for n, p in PROTOCOLS.items() if p.unit)


def endpoint_key(protocol: str, host: str | None, port: int | None, unit: int | None = None,
                 serial: str | None = None) -> tuple | None:
    """What two devices must not share: the socket a collector talks to (transport, host,
    port), plus the unit id behind a Modbus gateway or on a serial line.  None for devices
    that are not polled over an address (``none``, ``nvml``).

    A DCGM exporter and a Modbus gateway on the same TCP host:port collide too: one
    listener cannot be both."""
    if (row := PROTOCOLS.get(protocol)) is not None and row.needs_serial:
        return ("serial", serial, None, unit) if serial else None
    transport = _TRANSPORT.get(protocol)
    if transport is None or not host:
        return None
    return (transport, host.lower(), port, unit if protocol in _MODBUS else None)


def _endpoint_problems(site: Site) -> list[Problem]:
    """Two devices on one endpoint: the second is refused, naming the first.

    A Modbus gateway's listener is shared by its units (same host:port, different unit);
    anything else on that listener (another protocol, or a unit used twice) is a duplicate."""
    problems: list[Problem] = []
    seen: dict[tuple, tuple[str, tuple]] = {}
    listeners: dict[tuple, tuple[str, str, tuple]] = {}  # (transport, host, port) -> (protocol family, id, path)
    for path, dev, *_ in walk_devices(site):
        port = dev.effective_port()
        key = endpoint_key(dev.protocol, dev.host, port, dev.unit, dev.serial)
        if key is None:
            continue
        where = f"{dev.serial}" if key[0] == "serial" else f"{dev.host}:{port}"
        unit = f" unit {dev.unit}" if key[3] is not None else ""
        if key in seen:
            other, other_path = seen[key]
            problems.append(Problem(path + ("host" if dev.host else "serial",),
                                    f"duplicate endpoint {dev.protocol} {where}{unit}: already used by {other!r} "
                                    f"({format_path(other_path)}); give each device its own address"))
            continue
        seen[key] = (dev.id, path)
        if key[0] == "serial":
            continue
        family = "modbus" if dev.protocol in _MODBUS else dev.protocol
        listener = key[:3]
        first = listeners.setdefault(listener, (family, dev.id, path))
        if first[0] != family:
            problems.append(Problem(path + ("host",),
                                    f"duplicate endpoint {dev.protocol} {where}: {first[1]!r} ({format_path(first[2])}) "
                                    f"is polled there over {first[0]}; give each device its own address"))
    return problems

