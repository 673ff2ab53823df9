"""The demo's live terminal view: PUE, facility/IT power, hall loads, alerts, poll health.

:class:`LiveState` is a sample consumer (plain callable) that keeps only what
the view shows; :func:`render` turns it into a rich renderable.  Both are pure
of I/O so the view is tested by rendering to text.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from contract import alert_event as ae
from contract import poll
from contract import derived as D
from contract.tags import DEVICE, HALL
from contract.sample import Sample

__all__ = ["LiveState", "render"]

_SEVERITY_STYLE = {"critical": "bold red", "major": "red", "minor": "yellow", "warning": "yellow", "info": "cyan"}


@dataclass
class PollHealth:
    ok: int = 0
    failed: int = 0
    last_ms: dict[str, float] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)


@dataclass
class LiveState:
    site: str = ""
    pue: float | None = None
    facility_w: float | None = None
    it_w: float | None = None
    renewable_w: float | None = None
    hall_load: dict[str, tuple[float, float]] = field(default_factory=dict)  # hall -> (load_w, rated_w)
    active_alerts: dict[str, dict] = field(default_factory=dict)  # fingerprint -> event
    events: deque = field(default_factory=lambda: deque(maxlen=8))
    polls: PollHealth = field(default_factory=PollHealth)
    samples: int = 0
    started: float = field(default_factory=time.monotonic)
    #: meter id -> "boundary" | "it" | "renewable": lets the view compute an
    #: instantaneous PUE from meter samples when no derived metrics are running
    meter_roles: dict[str, str] = field(default_factory=dict)
    hall_of: dict[str, str] = field(default_factory=dict)
    hall_rated_w: dict[str, float] = field(default_factory=dict)
    _meter_w: dict[str, float] = field(default_factory=dict)
    _pdu_w: dict[str, float] = field(default_factory=dict)
    _derived: bool = False

    @classmethod
    def for_site(cls, site) -> "LiveState":
        """A view that knows the site's meter roles and hall ratings (from the inventory)."""
        roles = {d.id: (d.meter.role if d.meter.role != "it" or d.meter.category == 1 else "it_other")
                 for d in site.all_devices() if d.meter is not None}
        halls = {d.id: d.hall for d in site.all_devices() if d.hall and d.kind == "pdu"}
        rated = {h.id: (h.rated_kw or 0.0) * 1000.0 for h in site.halls}
        return cls(site=site.site.id, meter_roles=roles, hall_of=halls, hall_rated_w=rated)

    # -- consumers -----------------------------------------------------------------
    def __call__(self, samples: list[Sample]) -> None:
        self.samples += len(samples)
        for s in samples:
            m = s.measurement
            if m == poll.POLL_MEASUREMENT:
                dev = s.tags.get(DEVICE, "?")
                if s.fields.get(poll.OK):
                    self.polls.ok += 1
                    self.polls.last_error.pop(dev, None)
                else:
                    self.polls.failed += 1
                    self.polls.last_error[dev] = f"{s.fields.get(poll.ERROR_KIND, '')}: {s.fields.get(poll.ERROR, '')}"[:60]
                self.polls.last_ms[dev] = float(s.fields.get(poll.DURATION_MS, 0.0))
            elif m == "meter" and s.tags.get("device") in self.meter_roles and "phase" not in s.tags:
                if isinstance(s.fields.get("power_w"), (int, float)):
                    self._meter_w[s.tags["device"]] = float(s.fields["power_w"])
                    if not self._derived:
                        self._from_meters()
            elif m == "pdu" and s.tags.get("device") in self.hall_of and set(s.tags) & {"phase", "outlet", "branch", "bank"} == set():
                if isinstance(s.fields.get("power_w"), (int, float)):
                    self._pdu_w[s.tags["device"]] = float(s.fields["power_w"])
                    if not self._derived:
                        self._halls_from_pdus()
            elif m == D.SITE_POWER and HALL not in s.tags:
                self._derived = True
                self.facility_w = _num(s.fields.get(D.FACILITY_W), self.facility_w)
                self.it_w = _num(s.fields.get(D.IT_W), self.it_w)
                self.renewable_w = _num(s.fields.get(D.RENEWABLE_W), self.renewable_w)
            elif m == D.PUE and HALL not in s.tags:
                self.pue = _num(s.fields.get(D.PUE_VALUE), self.pue)
            elif m == D.CAPACITY and s.tags.get(D.LEVEL) == D.LEVEL_HALL:
                load, rated = s.fields.get(D.LOAD_W), s.fields.get(D.RATED_W)
                if isinstance(load, (int, float)) and isinstance(rated, (int, float)):
                    self.hall_load[s.tags.get(D.ID, s.tags.get(HALL, "?"))] = (float(load), float(rated))

    def _from_meters(self) -> None:
        by_role: dict[str, float] = {}
        for dev, w in self._meter_w.items():
            role = self.meter_roles[dev]
            by_role[role] = by_role.get(role, 0.0) + w
        self.facility_w = by_role.get("boundary")
        self.it_w = by_role.get("it")
        self.renewable_w = by_role.get("renewable")
        if self.facility_w and self.it_w:
            self.pue = self.facility_w / self.it_w

    def _halls_from_pdus(self) -> None:
        load: dict[str, float] = {}
        for dev, w in self._pdu_w.items():
            hall = self.hall_of[dev]
            load[hall] = load.get(hall, 0.0) + w
        for hall, w in load.items():
            self.hall_load[hall] = (w, self.hall_rated_w.get(hall, 0.0))

    def alert_event(self, event: dict) -> None:
        """Feed one alert event (the MQTT payload as a dict)."""
        fp = event.get(ae.FINGERPRINT, "")
        state = event.get(ae.STATE, "")
        if state == ae.FIRING:
            self.active_alerts[fp] = event
        elif state == ae.RESOLVED:
            self.active_alerts.pop(fp, None)
        self.events.append(event)


def _num(value, default):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _kw(watts: float | None) -> str:
    return "—" if watts is None else f"{watts / 1000:,.1f} kW"


def status_line(state: LiveState) -> str:
    """The live view in one line, for logs and CI: PUE, power, poll health, active alerts."""
    pue = "—" if state.pue is None else f"{state.pue:.3f}"
    if state.pue is not None and state.pue < 1.0:
        pue += " (facility < IT: load carried by UPS batteries)"
    return (f"[bold]PUE {pue}[/] (instantaneous)  facility {_kw(state.facility_w)}  IT {_kw(state.it_w)}  "
            f"renewable {_kw(state.renewable_w)}  polls ok {state.polls.ok:,} failed {state.polls.failed:,}  "
            f"active alerts {len(state.active_alerts)}")


def render(state: LiveState) -> Group:
    head = Table.grid(padding=(0, 3))
    for _ in range(5):
        head.add_column()
    pue = "—" if state.pue is None else f"{state.pue:.3f}"
    on_battery = state.pue is not None and state.pue < 1.0  # facility < IT: the batteries carry the difference
    head.add_row(
        Text.assemble(("PUE (instant) ", "bold"), (pue + (" on battery" if on_battery else ""),
                                                   "bold yellow" if on_battery else "bold green")),
        Text.assemble(("Facility ", "bold"), _kw(state.facility_w)),
        Text.assemble(("IT ", "bold"), _kw(state.it_w)),
        Text.assemble(("Renewable ", "bold"), _kw(state.renewable_w)),
        Text.assemble(("Polls ", "bold"), f"{state.polls.ok} ok / ", (f"{state.polls.failed} failed", "red" if state.polls.failed else "")),
    )

    halls = Table(title="Hall load vs rating", expand=True)
    halls.add_column("hall")
    halls.add_column("load", justify="right")
    halls.add_column("rated", justify="right")
    halls.add_column("%", justify="right")
    for hall, (load, rated) in sorted(state.hall_load.items()):
        pct = 100 * load / rated if rated else 0.0
        halls.add_row(hall, _kw(load), _kw(rated), Text(f"{pct:.0f}", style="red" if pct > 80 else "green"))

    alerts = Table(title=f"Active alerts ({len(state.active_alerts)})", expand=True)
    alerts.add_column("severity")
    alerts.add_column("rule")
    alerts.add_column("device")
    alerts.add_column("summary")
    alerts.add_column("suppressed by")
    for ev in sorted(state.active_alerts.values(), key=lambda e: (e.get(ae.SEVERITY, ""), e.get(ae.RULE, ""))):
        sev = ev.get(ae.SEVERITY, "")
        alerts.add_row(Text(sev, style=_SEVERITY_STYLE.get(sev, "")), ev.get(ae.RULE, ""), ev.get(ae.DEVICE, ""),
                       ae.summary_of(ev)[:70], str(ev.get(ae.SUPPRESSED_BY) or "")[:12])

    slow = sorted(state.polls.last_ms.items(), key=lambda kv: -kv[1])[:5]
    health = Table(title="Slowest polls / failing devices", expand=True)
    health.add_column("device")
    health.add_column("last poll ms", justify="right")
    health.add_column("error")
    failing = list(state.polls.last_error.items())[:5]
    shown = dict(slow)
    for dev, _ in failing:
        shown.setdefault(dev, state.polls.last_ms.get(dev, 0.0))
    for dev, ms in shown.items():
        health.add_row(dev, f"{ms:.1f}", Text(state.polls.last_error.get(dev, ""), style="red"))
    elapsed = time.monotonic() - state.started
    footer = Text(f"site {state.site} · {state.samples:,} samples · {elapsed:.0f}s", style="dim")
    return Group(Panel(head, title="Iozera DCIM — live"), halls, alerts, health, footer)
