"""Inventory devices -> Targets, with their credentials resolved.

Resolution happens once at start-up (and on reload), not per poll.  A device
whose secret cannot be read becomes a :class:`TargetProblem` naming the
device and the reference (variable or file), never a value; the other
devices still run.
"""
from __future__ import annotations

from dataclasses import dataclass

from collectors.base import Target
from inventory.model import Device, Site
from inventory.secrets import SecretError

__all__ = ["build_targets", "device_target", "TargetProblem", "outlet_feeds", "tag_outlet_feeds"]


@dataclass(frozen=True, slots=True)
class TargetProblem:
    device_id: str
    message: str


def outlet_feeds(site: Site) -> dict[str, dict[str, str]]:
    """PDU id -> {outlet: id of the device it feeds}, from every device's ``fed_by: [PDU:OUTLET]``."""
    out: dict[str, dict[str, str]] = {}
    for dev in site.all_devices():
        if dev.labels.get("node"):
            continue  # a BMC or agent that is a view of a node (labels.node): the outlet feeds the node
        for feed in dev.fed_by:
            if feed.outlet is not None:
                out.setdefault(feed.device, {})[str(feed.outlet)] = dev.id
    return out


def tag_outlet_feeds(samples, feeds: dict[str, str]) -> None:
    """Add ``feeds=<device>`` to outlet samples whose outlet the inventory wires to a device."""
    for s in samples:
        outlet = s.tags.get("outlet")
        if outlet is not None:
            node = feeds.get(outlet)
            if node is not None:
                s.tags["feeds"] = node


def device_target(site: Site, dev: Device, environ: dict[str, str] | None = None,
                  feeds: dict[str, dict[str, str]] | None = None) -> Target:
    """The Target for one device; raises SecretError if a credential is unreadable."""
    d = site.defaults
    options: dict = {}
    secrets = {}
    cred_name = site.credential_name(dev)
    if cred_name:
        cred = site.credentials[cred_name]
        for key, ref in cred.secret_refs().items():
            secrets[key] = ref.resolve(environ=environ)
        for key in ("version", "user", "auth_protocol", "priv_protocol"):
            value = getattr(cred, key)
            if value is not None:
                options[key] = value
        if cred.trap_engine_ids:
            options["trap_engine_ids"] = tuple(cred.trap_engine_ids)
        if isinstance(cred.username, str):
            options["username"] = cred.username
    if dev.serial:
        options["serial"] = dev.serial
    if dev.baud:
        options["baud"] = dev.baud
    if dev.protocol.startswith("redfish"):
        options["tls_verify"] = dev.tls_verify
        if dev.ca_bundle:
            options["ca_bundle"] = dev.ca_bundle
    if dev.gpus is not None:
        options["gpus"] = dev.gpus
    tags = site.location_tags(dev)
    tags.pop("kind", None)
    for k, v in dev.labels.items():
        tags.setdefault(k, v)
    return Target(
        device_id=dev.id,
        protocol=dev.protocol,
        host=dev.host or "",
        port=dev.effective_port(),
        unit=dev.unit,
        kind=dev.kind,
        profile=dev.profile,
        tags=tags,
        timeout_s=dev.timeout_s or d.timeout_s,
        retries=dev.retries if dev.retries is not None else d.retries,
        interval_s=dev.interval_s or d.interval_s,
        options=options,
        secrets=secrets,
        outlet_feeds=dict((feeds if feeds is not None else outlet_feeds(site)).get(dev.id, {})),
    )


def build_targets(site: Site, devices: list[Device] | None = None, environ: dict[str, str] | None = None) -> tuple[list[Target], list[TargetProblem]]:
    targets: list[Target] = []
    problems: list[TargetProblem] = []
    feeds = outlet_feeds(site)
    for dev in devices if devices is not None else site.polled_devices():
        try:
            targets.append(device_target(site, dev, environ, feeds))
        except SecretError as exc:
            problems.append(TargetProblem(dev.id, str(exc)))
    return targets, problems
