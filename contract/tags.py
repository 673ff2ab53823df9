"""The tag vocabulary: which tags say *where* a sample comes from, which say *what* it is.

The inventory adds the location tags to every sample of a device (the same
values for all of that device's samples).  Every other tag a sample carries is
a **series tag**: it tells two series of one device apart (``stage=input`` vs
``stage=output``, ``phase=L1``, ``outlet=7``, ``gpu=3``, and inventory labels).
Alert identity is the rule plus the device plus every series tag
(:func:`series_tags`), so a new tag a collector starts writing splits alert
series by itself, with no list to keep up to date.
"""
from __future__ import annotations

from typing import Mapping

__all__ = ["SITE", "HALL", "ROW", "RACK", "DEVICE", "VENDOR", "MODEL", "KIND", "PHASE", "OUTLET", "FEEDS",
           "GPU", "POD", "NAMESPACE", "JOB", "CONTAINER", "WORKLOAD_TAGS", "PLACE_TAGS", "LOCATION_TAGS", "series_tags",
           "place_tags"]

SITE = "site"
HALL = "hall"
ROW = "row"
RACK = "rack"
#: the inventory id of the device: a location tag, and the anchor of every alert series
DEVICE = "device"
VENDOR = "vendor"
MODEL = "model"
#: the inventory kind (pdu, ups, ...): used to select devices, never written as a tag
KIND = "kind"

#: series tag: the phase of a per-phase reading (L1, L2, L3); absent ("") on a device's totals
PHASE = "phase"

#: series tag of a PDU outlet sample: the outlet number as the PDU indexes it
OUTLET = "outlet"
#: series tag of an outlet sample the inventory wires to a device (``fed_by: [PDU:OUTLET]``): that device's id
FEEDS = "feeds"

#: series tags of a ``gpu`` sample: the GPU index, and the workload on it (dcgm-exporter's
#: Kubernetes pod labels, or an HPC job id); absent on an idle GPU
GPU = "gpu"
POD = "pod"
NAMESPACE = "namespace"
JOB = "job"
#: the container of the pod that holds the GPU (dcgm-exporter's ``container`` label)
CONTAINER = "container"
#: what ran on a GPU: energy attribution reads these (reports/attribution.py)
WORKLOAD_TAGS: tuple[str, ...] = (NAMESPACE, POD, JOB)

#: where the device sits, outermost first (alert events and ``alert`` points carry these)
PLACE_TAGS: tuple[str, ...] = (SITE, HALL, ROW, RACK)
#: the tags the inventory adds to every sample of a device
LOCATION_TAGS: tuple[str, ...] = (*PLACE_TAGS, DEVICE, VENDOR, MODEL)
_LOCATION = frozenset(LOCATION_TAGS)


def series_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Every tag that is not a location tag: what tells a device's series apart."""
    return {k: v for k, v in tags.items() if k not in _LOCATION}


def place_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The non-empty :data:`PLACE_TAGS` of ``tags``."""
    return {k: tags[k] for k in PLACE_TAGS if tags.get(k)}
