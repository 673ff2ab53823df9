"""Redfish CDUs (``/redfish/v1/ThermalEquipment/CDUs/{id}``) -> ``cdu`` samples in the shared names.

A sans-I/O walk like the chassis walk in ``redfish.py`` (it yields paths and is
sent resources, following ``@odata.id`` links only): service root ->
``ThermalEquipment`` -> ``CDUs`` -> each ``CoolingUnit`` and, from its links,
``PrimaryCoolantConnectors`` / ``SecondaryCoolantConnectors`` (each
``CoolantConnector``), ``Pumps``, ``Filters``, ``Reservoirs``,
``EnvironmentMetrics`` and ``LeakDetection`` -> ``LeakDetectors``.

Property names follow the DMTF Redfish schemas (DSP0268 / DSP8010 bundle) as
the DMTF schema guide's examples (DSP2046: ``CoolingUnit.v1_2_0``,
``CoolantConnector.v1_1_0``, ``Pump.v1_2_0``, ``Filter.v1_1_0``,
``LeakDetector.v1_3_0``) and the OCP Coolant Distribution Unit and Liquid
Cooling Baseline profiles' examples (``CoolingUnit.v1_1_2``,
``CoolantConnector.v1_0_2``, ``Pump.v1_1_0``, ``Filter.v1_0_2``,
``Reservoir.v1_0_2``, ``LeakDetection.v1_0_1``, ``LeakDetector.v1_1_0``,
``EnvironmentMetrics.v1_3_0``) write them; the payloads this is tested on are
in ``tests/gpu/redfish_cdu/`` with their sources:

=====================================================  =========================================
Redfish                                                ``cdu`` sample (contract/cooling.py)
=====================================================  =========================================
``CoolantConnector`` under Primary/SecondaryCoolant-    tags ``side`` = primary/secondary, ``loop`` =
Connectors                                             the connector's ``Id``
``SupplyTemperatureCelsius.Reading``                   ``supply_temp_c``
``ReturnTemperatureCelsius.Reading``                   ``return_temp_c``
``FlowLitersPerMinute.Reading``                        ``flow_lpm``
``DeltaPressurekPa.Reading``                           ``differential_pressure_kpa``
``SupplyPressurekPa`` / ``ReturnPressurekPa``          ``supply_pressure_kpa`` / ``return_pressure_kpa``
``HeatRemovedkW.Reading``                              ``heat_removed_w`` (× 1000)
``Pump``: ``PumpSpeedPercent.Reading`` / ``.SpeedRPM``  tag ``pump`` = ``Id``: ``speed_pct``, ``speed_rpm``,
``Status``                                             ``state`` (vocabulary ``pump``)
``Filter``: ``ServiceHours``, ``Status``,              tag ``filter``: ``service_hours``, ``state`` (``status``),
``DeltaLiquidPressurekPa.Reading`` (v1.1.0)            ``differential_pressure_kpa``
``Reservoir``: ``FluidLevelPercent.Reading``,          tag ``reservoir``: ``level_pct``, ``state``
``FluidLevelStatus`` (else ``Status.Health``)          (``status``)
``LeakDetector``: ``DetectorState``, ``Status``        tag ``detector``: ``state`` (vocabulary ``leak``);
(else ``LeakDetectorGroups[].Detectors[]`` excerpts)    the excerpt's id: its DataSourceUri's last segment
``CoolingUnit``: ``Status``, ``CoolingCapacityWatts``  no tag: ``state`` (vocabulary ``unit``),
                                                       ``cooling_capacity_w``
``EnvironmentMetrics``: ``PowerWatts``, ``EnergykWh``, no tag: ``power_w``, ``energy_kwh``, ``temp_c``,
``TemperatureCelsius``, ``HumidityPercent``            ``humidity_pct`` (the unit's own draw and air)
=====================================================  =========================================

States go through the vocabularies of :mod:`contract.states` (pure functions
below, the vendor's words in ``state_raw``): Redfish ``Status.Health``
(``OK``/``Warning``/``Critical``) and ``Status.State`` (``Enabled``,
``StandbySpare``, ``Disabled``, ``Absent`` …); ``DetectorState`` ``OK`` is
``dry``, ``Warning``/``Critical`` are ``leak`` (``DetectorState`` is a
``Resource.Health`` value, the detector's reading; our reading of it: anything
but OK means liquid seen), and a detector without a ``DetectorState`` whose own
``Status.Health`` is not OK is ``fault``.  A service that lists several CDUs tags each CDU's samples with
``cdu`` = its ``Id`` so their loops stay apart.
"""
from __future__ import annotations

from typing import Any

from collectors.gpu.redfish_links import Walk, ident, link, members, num, optional, reading
from contract import cooling as C
from contract.sample import Sample
from contract.states import LEAK, PUMP, STATUS, UNIT, UNKNOWN, VOCABULARIES, raw_field

__all__ = ["cdu_walk", "cdu_samples", "unit_state", "pump_state", "health_state", "leak_state", "MAX_COMPONENTS",
           "CDU_TAG"]

#: members read per component collection (pumps, filters, detectors …) of one CDU
MAX_COMPONENTS = 64
#: CDUs read per service
MAX_CDUS = 16
#: series tag naming the CDU, only when one service lists several
CDU_TAG = "cdu"

_HEALTH_BAD = frozenset({"Warning", "Critical"})
_OFF_STATES = frozenset({"Disabled", "Absent", "UnavailableOffline", "Deferring", "Quiesced"})
_STANDBY_STATES = frozenset({"StandbySpare", "StandbyOffline"})
_MAINTENANCE_STATES = frozenset({"InTest", "Updating", "Qualified"})
# A Status.State word shared by the ``unit`` and ``pump`` vocabularies.
_RUN_WORDS: dict[str | None, str] = {"Enabled": "running", "Starting": "running",
                                     **dict.fromkeys(_STANDBY_STATES, "standby"),
                                     **dict.fromkeys(_OFF_STATES, "off")}


def _status(obj: Any) -> tuple[str | None, str | None]:
    """``(Status.State, Status.Health)``, either None when absent."""
    status = obj.get("Status") if isinstance(obj, dict) else None
    if not isinstance(status, dict):
        return None, None
    state, health = status.get("State"), status.get("Health")
    return (state if isinstance(state, str) else None), (health if isinstance(health, str) else None)


def _raw(state: str | None, health: str | None) -> str:
    return "/".join(w for w in (state, health) if w) or UNKNOWN


def unit_state(state: str | None, health: str | None) -> str:
    """A CoolingUnit's ``Status`` as a ``unit`` word: an unhealthy unit is in ``alarm`` first of all."""
    if health in _HEALTH_BAD:
        return "alarm"
    if state in _MAINTENANCE_STATES:
        return "maintenance"
    return _RUN_WORDS.get(state, UNKNOWN)


def pump_state(state: str | None, health: str | None) -> str:
    """A Pump's ``Status`` as a ``pump`` word: Critical is a failed pump; Warning still pumps."""
    if health == "Critical":
        return "fault"
    return _RUN_WORDS.get(state, UNKNOWN)


def health_state(health: str | None) -> str:
    """A Redfish ``Health`` (a filter's, a reservoir's FluidLevelStatus) as a ``status`` word."""
    if health == "OK":
        return "ok"
    if health in _HEALTH_BAD:
        return "fault"
    return UNKNOWN


def leak_state(detector_state: str | None, health: str | None) -> str:
    """A LeakDetector's ``DetectorState`` (else its own ``Status.Health``) as a ``leak`` word."""
    if detector_state == "OK":
        return "dry"
    if detector_state in _HEALTH_BAD:
        return "leak"
    if detector_state is None and health in _HEALTH_BAD:
        return "fault"
    return UNKNOWN


def _state_fields(word: str, raw: str, vocabulary: str) -> dict[str, Any]:
    assert word in VOCABULARIES[vocabulary], (word, vocabulary)
    return {C.STATE: word, raw_field(C.STATE): raw}


_CONNECTOR_READINGS = (("SupplyTemperatureCelsius", C.SUPPLY_TEMP_C, 1.0), ("ReturnTemperatureCelsius", C.RETURN_TEMP_C, 1.0),
                       ("FlowLitersPerMinute", C.FLOW_LPM, 1.0), ("DeltaPressurekPa", C.DIFFERENTIAL_PRESSURE_KPA, 1.0),
                       ("SupplyPressurekPa", C.SUPPLY_PRESSURE_KPA, 1.0), ("ReturnPressurekPa", C.RETURN_PRESSURE_KPA, 1.0),
                       ("HeatRemovedkW", C.HEAT_REMOVED_W, 1000.0))
_ENV_READINGS = (("PowerWatts", "power_w"), ("EnergykWh", "energy_kwh"), ("TemperatureCelsius", "temp_c"),
                 ("HumidityPercent", "humidity_pct"))


def cdu_samples(unit: dict, connectors: dict[str, list[dict]], pumps: list[dict], filters: list[dict],
                reservoirs: list[dict], detectors: list[dict], env: dict | None,
                tags: dict[str, str], time_ns: int, leak: dict | None = None) -> list[Sample]:
    """One CDU's resources -> its ``cdu`` samples (pure: the walk fetches, this decodes).

    ``detectors`` are the ``LeakDetectors`` members; without any, the excerpts in ``leak``
    (the ``LeakDetection`` resource) give the detectors' states instead."""
    out: list[Sample] = []

    def emit(extra: dict[str, str], fields: dict[str, Any]) -> None:
        if fields:
            out.append(Sample(C.CDU, {**tags, **extra}, fields, time_ns))

    state, health = _status(unit)
    fields: dict[str, Any] = _state_fields(unit_state(state, health), _raw(state, health), UNIT)
    if (cap := num(unit.get("CoolingCapacityWatts"))) is not None:
        fields[C.COOLING_CAPACITY_W] = cap
    for key, field in _ENV_READINGS:
        if (v := reading(env, key)) is not None:
            fields[field] = v
    emit({}, fields)

    for side in C.SIDES:
        for conn in connectors.get(side, []):
            fields = {}
            for key, field, scale in _CONNECTOR_READINGS:
                if (v := reading(conn, key)) is not None:
                    fields[field] = v * scale
            emit({C.SIDE: side, C.LOOP: ident(conn)}, fields)

    for pump in pumps:
        state, health = _status(pump)
        fields = _state_fields(pump_state(state, health), _raw(state, health), PUMP)
        speed = pump.get("PumpSpeedPercent")
        if isinstance(speed, dict):
            if (p := num(speed.get("Reading"))) is not None:
                fields[C.SPEED_PCT] = p
            if (r := num(speed.get("SpeedRPM"))) is not None:
                fields[C.SPEED_RPM] = r
        emit({C.PUMP: ident(pump)}, fields)

    for flt in filters:
        state, health = _status(flt)
        fields = _state_fields(health_state(health), _raw(state, health), STATUS)
        if (h := num(flt.get("ServiceHours"))) is not None:
            fields[C.SERVICE_HOURS] = h
        if (dp := reading(flt, "DeltaLiquidPressurekPa")) is not None:   # Filter v1.1.0
            fields[C.DIFFERENTIAL_PRESSURE_KPA] = dp
        emit({C.FILTER: ident(flt)}, fields)

    for res in reservoirs:
        level_status = res.get("FluidLevelStatus") if isinstance(res.get("FluidLevelStatus"), str) else None
        state, health = _status(res)
        word = level_status or health
        fields = _state_fields(health_state(word), word or UNKNOWN, STATUS)
        if (v := reading(res, "FluidLevelPercent")) is not None:
            fields[C.LEVEL_PCT] = v
        emit({C.RESERVOIR: ident(res)}, fields)

    for det in detectors:
        ds = det.get("DetectorState") if isinstance(det.get("DetectorState"), str) else None
        state, health = _status(det)
        emit({C.DETECTOR: ident(det)}, _state_fields(leak_state(ds, health), ds or _raw(state, health), LEAK))
    if not detectors:
        for name, ds in _detector_excerpts(leak):
            emit({C.DETECTOR: name}, _state_fields(leak_state(ds, None), ds or UNKNOWN, LEAK))
    return out


def _detector_excerpts(leak: dict | None) -> list[tuple[str, str | None]]:
    """``(id, DetectorState)`` of each ``LeakDetectorGroups[].Detectors[]`` excerpt.

    A service may list its detectors only there (DMTF's own LeakDetection example has no
    ``LeakDetectors`` collection).  The id is the last segment of the excerpt's
    ``DataSourceUri`` (the detector's ``Id``), else its ``DeviceName``."""
    out: list[tuple[str, str | None]] = []
    groups = leak.get("LeakDetectorGroups") if isinstance(leak, dict) else None
    for group in groups if isinstance(groups, list) else []:
        dets = group.get("Detectors") if isinstance(group, dict) else None
        for det in (dets if isinstance(dets, list) else [])[:MAX_COMPONENTS]:
            if not isinstance(det, dict):
                continue
            uri, name = det.get("DataSourceUri"), det.get("DeviceName")
            det_id = uri.rstrip("/").rsplit("/", 1)[-1] if isinstance(uri, str) and uri.strip("/") else name
            if isinstance(det_id, str) and det_id:
                ds = det.get("DetectorState")
                out.append((det_id, ds if isinstance(ds, str) else None))
    return out


def cdu_walk(root: dict, base_tags: dict[str, str], time_ns: int) -> Walk:
    """Every CDU under the service root's ``ThermalEquipment`` -> ``cdu`` samples (none without one)."""
    thermal = yield from optional(link(root, "ThermalEquipment"))
    units = (yield from members(link(thermal, "CDUs"), limit=MAX_CDUS)) if thermal is not None else []
    out: list[Sample] = []
    for unit in units:
        tags = {**base_tags, CDU_TAG: ident(unit)} if len(units) > 1 else dict(base_tags)
        connectors = {C.PRIMARY: (yield from members(link(unit, "PrimaryCoolantConnectors"), MAX_COMPONENTS)),
                      C.SECONDARY: (yield from members(link(unit, "SecondaryCoolantConnectors"), MAX_COMPONENTS))}
        pumps = yield from members(link(unit, "Pumps"), MAX_COMPONENTS)
        filters = yield from members(link(unit, "Filters"), MAX_COMPONENTS)
        reservoirs = yield from members(link(unit, "Reservoirs"), MAX_COMPONENTS)
        env = yield from optional(link(unit, "EnvironmentMetrics"))
        leak = yield from optional(link(unit, "LeakDetection"))
        detectors = (yield from members(link(leak, "LeakDetectors"), MAX_COMPONENTS)) if leak is not None else []
        out.extend(cdu_samples(unit, connectors, pumps, filters, reservoirs, detectors, env, tags, time_ns, leak))
    return out
