"""Topology-aware suppression: a symptom downstream of a firing root cause is marked, not hidden.

The rule (also in alerts/README.md):

* A *root* is a firing alert whose rule has ``explains`` (``power``, ``cooling``,
  ``reachability``).  A device with a firing root of a kind is *failed* for that kind.
* Power: a device is *cut off* when it is failed itself, or when it has feeds and
  **every** feed is cut off.  An alert on device D is suppressed when every
  power path from D up to a source passes through a failed device, i.e. all of
  D's feeds are cut off.  One healthy path (the other side of a 2N rack) keeps
  the alert unsuppressed: UPS-A alone does not explain a node fed by PDU-A and PDU-B.
* Cooling: the same over ``cooled_by`` (a CDU cooled by a stopped chiller; nodes
  cooled by that CDU), and power-failed devices also cut cooling they provide.
  Per loop: a node on ``cdu-1:2`` hangs off the loop ``cdu-1:2``, which hangs off
  ``cdu-1``.  A root on a CDU whose series carries a ``loop`` tag (and no
  ``side`` other than ``secondary``: a primary-side fault starves every loop) fails
  that loop only, so it explains the nodes on loop 2 and not those on loop 1; a
  root on the unit (no ``loop`` tag, or the primary side) fails every loop.
* Reachability: like power, but it explains only ``device_down``/``stale``/``absent``
  alerts (a silent device), not measured values.
* A root alert itself is judged the same way (a PDU's root alert under a failed
  UPS is suppressed by the UPS's).  ``suppressed_by`` lists the topmost root
  fingerprints found on the cut-off paths, comma-separated, sorted.

Suppressed alerts are still evaluated and published, with ``suppressed_by`` set,
so people see the cause first and the symptoms are one click away.
"""
from __future__ import annotations

from typing import Callable

from alerts.evaluate import Alert
from alerts.rules import Rule
from contract import cooling as C
from inventory.loops import LoopIndex, loop_node
from inventory.topology import PowerGraph

__all__ = ["Suppressor"]

_SILENT_KINDS = frozenset({"device_down", "stale", "absent"})


class Suppressor:
    """Callable for :class:`alerts.evaluate.Engine`: (alert, firing root alerts) -> suppressed_by."""

    def __init__(self, graph: PowerGraph, rule_of: Callable[[str], Rule | None]) -> None:
        self.graph = graph
        self.rule_of = rule_of
        # cooling through loops, worked out once: device -> its loops (and non-CDU coolers); loop -> its CDU
        site = graph.site
        index = LoopIndex(site)
        #: the site's loop index, also read by the engine it serves (one index per engine, not two)
        self.loop_index = index
        self._loops = frozenset(index.loops())
        self._cool_parents: dict[str, list[str]] = {}
        for key in self._loops:
            self._cool_parents[loop_node(key)] = [key[0]]
        for dev in site.all_devices():
            keys = index.loops_of(dev.id)
            if keys:
                others = [c for c in graph.cooled_by(dev.id) if site.device(c).kind != "cdu"]
                self._cool_parents[dev.id] = [loop_node(k) for k in keys] + others

    def _failed_node(self, a: Alert, kind: str) -> str:
        """What a root alert fails: its device, or for cooling one loop of a CDU (see the module doc)."""
        if kind == "cooling":
            loop = a.series.get(C.LOOP)
            if loop is not None and a.series.get(C.SIDE, C.SECONDARY) == C.SECONDARY and (a.device, loop) in self._loops:
                return loop_node((a.device, loop))
        return a.device

    def __call__(self, alert: Alert, roots: dict[str, Alert]) -> str:
        failed: dict[str, dict[str, list[str]]] = {"power": {}, "cooling": {}, "reachability": {}}
        for fp, a in roots.items():
            rule = self.rule_of(a.rule)
            if rule is None or not rule.explains:
                continue
            for kind in rule.explains:
                failed[kind].setdefault(self._failed_node(a, kind), []).append(fp)
        if not any(failed.values()):
            return ""
        rule = self.rule_of(alert.rule)
        kinds = ["power", "cooling"]
        if rule is not None and rule.kind in _SILENT_KINDS:
            kinds.append("reachability")
        roots: set[str] = set()
        for kind in kinds:
            if not failed[kind]:
                continue
            cut = self._cut_roots(alert.device, kind, failed, exclude=alert.fingerprint)
            if cut:
                roots |= cut
        return ",".join(sorted(roots))

    def _parents(self, device: str, kind: str) -> list[str]:
        if kind == "cooling":
            parents = self._cool_parents.get(device)
            return parents if parents is not None else self.graph.cooled_by(device)
        return self.graph.upstream(device)

    def _cut_roots(self, device: str, kind: str, failed: dict[str, dict[str, list[str]]], exclude: str) -> set[str]:
        """Root fingerprints that cut ``device`` off for ``kind``, or an empty set if one path is healthy."""
        memo: dict[str, set[str] | None] = {}

        def node_cut(d: str, stack: frozenset[str]) -> set[str] | None:
            """Roots that explain d being cut off (d failed or all its parents cut), None if not cut."""
            if d in memo:
                return memo[d]
            if d in stack:  # defensive: the inventory refuses cycles
                return None
            via_parents = parents_cut(d, stack | {d})
            own = [fp for fp in failed[kind].get(d, []) if fp != exclude]
            if kind == "cooling":  # a device without power provides no cooling either
                own += [fp for fp in failed["power"].get(d, []) if fp != exclude]
            if via_parents is not None:
                result: set[str] | None = via_parents  # report the topmost cause
            elif own:
                result = set(own)
            else:
                result = None
            memo[d] = result
            return result

        def parents_cut(d: str, stack: frozenset[str]) -> set[str] | None:
            parents = self._parents(d, kind)
            if not parents:
                return None
            out: set[str] = set()
            for p in parents:
                r = node_cut(p, stack)
                if r is None:
                    return None
                out |= r
            return out

        return parents_cut(device, frozenset({device})) or set()
