"""The twin's workloads: which tenant's job runs on which GPU, deterministic for (seed, node, time).

Why a schedule and not a label per node: energy attribution is only tested
if jobs start and stop, and if some nodes are shared by two jobs (half the
GPUs each), so that a node's outlet energy has to be split.  Time is cut into
:data:`SLOT_S` slots; in each slot a node is idle (about 1 in 10), shared by
two jobs (about 1 in 4: GPUs ``[0, n/2)`` and ``[n/2, n)``), or runs one job on
all its GPUs.  A job belongs to a namespace; nodes of one rack that draw the
same namespace in the same slot run the same job (one pod each), so a
training job spans several nodes.  Namespaces come from the site's
``tenants:`` plus one no tenant lists (shown as ``unmapped``).

The labels are those dcgm-exporter's Kubernetes mapping puts on a GPU's
lines: ``namespace``, ``pod``, ``container``.
"""
from __future__ import annotations

import math
from functools import lru_cache

from inventory.model import Site
from simulator.stable_random import unit as _unit

__all__ = ["SLOT_S", "DEFAULT_NAMESPACES", "UNLISTED_NAMESPACE", "namespaces_for", "gpu_labels"]

#: how long a node keeps its jobs: ten days (training runs last days to weeks).  Every job change is a
#: new series per GPU and the storage rollups cost per series: with 3-day slots the demo's month took
#: 253 s to roll up instead of 52 s without jobs, close to its 300 s query limit.
SLOT_S = 10 * 86400
#: the namespaces of a site that lists no tenants
DEFAULT_NAMESPACES = ("atlas-train", "atlas-infer", "noor-research")
#: a namespace no tenant lists: its energy is the report's ``unmapped`` tenant
UNLISTED_NAMESPACE = "sandbox"
_IDLE, _SHARED = 0.10, 0.35
Labels = tuple[tuple[str, str], ...]


def namespaces_for(site: Site) -> tuple[str, ...]:
    """The namespaces the twin schedules: the tenants' (in file order), then one unlisted."""
    listed = [ns for t in site.tenants for ns in t.namespaces]
    return tuple(dict.fromkeys(listed or DEFAULT_NAMESPACES)) + (UNLISTED_NAMESPACE,)


def _job(seed: int, rack: str, slot: int, k: int, node: str, namespaces: tuple[str, ...]) -> Labels:
    # the unlisted namespace is drawn rarely (1 in 20), the listed ones evenly
    u = _unit(seed, rack, slot, k, "ns")
    ns = namespaces[-1] if u < 0.05 else namespaces[int((u - 0.05) / 0.95 * (len(namespaces) - 1))]
    kind = "infer" if "infer" in ns else "train"
    job = f"{kind}-{int(_unit(seed, ns, rack, slot, k) * 10**6):06d}"
    return (("namespace", ns), ("pod", f"{job}-{node.rsplit('-', 1)[-1]}"), ("container", kind))


def gpu_labels(seed: int, node: str, rack: str, n_gpus: int, t: float, namespaces: tuple[str, ...]) -> tuple[Labels, ...]:
    """Per GPU of ``node`` at time ``t``: the workload's labels, or ``()`` for an idle GPU.

    A slot is ``(k·SLOT_S, (k+1)·SLOT_S]``: at its end instant the GPU still shows the job that
    ran up to it, as the model's step ending there integrates that job's power, and a
    reading taken exactly there is credited to the job that ran before it (reports/attribution.py).
    """
    return _slot_labels(seed, node, rack, n_gpus, math.ceil(t / SLOT_S) - 1, namespaces)


@lru_cache(maxsize=1 << 17)   # constant over a slot: the model asks every step
def _slot_labels(seed: int, node: str, rack: str, n_gpus: int, slot: int, namespaces: tuple[str, ...]) -> tuple[Labels, ...]:
    u = _unit(seed, node, slot, "slot")
    if u < _IDLE or n_gpus == 0:
        return ((),) * n_gpus
    first = _job(seed, rack, slot, 0, node, namespaces)
    if u < _SHARED and n_gpus > 1:
        half = n_gpus // 2
        return (first,) * half + (_job(seed, rack, slot, 1, node, namespaces),) * (n_gpus - half)
    return (first,) * n_gpus
