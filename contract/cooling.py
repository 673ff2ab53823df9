"""The ``cdu`` measurement: tag and field names of a coolant distribution unit's samples.

Every CDU collector writes these names whatever the device speaks (a Modbus
register map, an SNMP MIB, a Redfish ``ThermalEquipment/CDUs/{id}`` resource),
and the parts that read CDUs (the derived per-loop figures, the cooling rules
and their suppression, the liquid-cooling dashboard, the twin) import them from
here, so a renamed field is renamed everywhere at once.

One unit writes several series, told apart by series tags:

==============================  =============================================================
tags                            fields
==============================  =============================================================
``side``, ``loop``              :data:`SUPPLY_TEMP_C`, :data:`RETURN_TEMP_C`, :data:`FLOW_LPM`,
(a coolant connector: the       :data:`DIFFERENTIAL_PRESSURE_KPA`, :data:`SUPPLY_PRESSURE_KPA`,
primary/facility side or a      :data:`RETURN_PRESSURE_KPA`, and :data:`HEAT_REMOVED_W` where the
secondary/IT loop)              device reports it per loop
``pump``                        :data:`STATE` (vocabulary ``pump``), :data:`SPEED_PCT`, :data:`SPEED_RPM`
``filter``                      :data:`STATE` (vocabulary ``status``), :data:`DIFFERENTIAL_PRESSURE_KPA`,
                                :data:`SERVICE_HOURS`
``reservoir``                   :data:`LEVEL_PCT`, :data:`STATE` (vocabulary ``status``)
``detector``                    :data:`STATE` (vocabulary ``leak``): one leak detector
(none: the unit)                :data:`STATE` (vocabulary ``unit``), :data:`HEAT_REMOVED_W` (the
                                unit's total), :data:`COOLING_CAPACITY_W`
==============================  =============================================================

``loop`` is the device's own loop or connector id, exactly the id an inventory
``loops:`` entry and a ``cooled_by: ["cdu-1:<loop>"]`` reference use; a unit
with one secondary loop writes ``"1"`` (:data:`DEFAULT_LOOP`).  The primary side
carries a ``loop`` too (its connector id, ``"1"`` for a single facility-water
connection), so a connector is always ``side`` + ``loop``.  A state field keeps
the vendor's word in ``<field>_raw`` (:func:`contract.states.raw_field`).
"""
from __future__ import annotations

from contract.states import LEAK, PUMP as PUMP_VOCABULARY, STATUS, UNIT

__all__ = [
    "CDU", "SIDE", "PRIMARY", "SECONDARY", "SIDES", "LOOP", "DEFAULT_LOOP", "PUMP", "FILTER", "RESERVOIR",
    "DETECTOR", "COMPONENT_TAGS", "SUPPLY_TEMP_C", "RETURN_TEMP_C", "FLOW_LPM", "DIFFERENTIAL_PRESSURE_KPA",
    "SUPPLY_PRESSURE_KPA", "RETURN_PRESSURE_KPA", "CONNECTOR_FIELDS", "HEAT_REMOVED_W", "COOLING_CAPACITY_W",
    "STATE", "SPEED_PCT", "SPEED_RPM", "SERVICE_HOURS", "LEVEL_PCT", "VOCABULARY_OF",
]

#: the measurement every CDU collector writes
CDU = "cdu"

# -- series tags ----------------------------------------------------------------------------
#: which side of the heat exchanger a connector is on: :data:`PRIMARY` or :data:`SECONDARY`
SIDE = "side"
#: the facility-water side (chiller plant, dry coolers)
PRIMARY = "primary"
#: the technology-coolant side: the loop(s) to the racks and cold plates
SECONDARY = "secondary"
SIDES = (PRIMARY, SECONDARY)
#: the device's loop/connector id (the inventory's ``loops[].id``)
LOOP = "loop"
#: the loop id of a unit with a single loop (and of an inventory CDU without ``loops:``)
DEFAULT_LOOP = "1"
#: one pump (its id as the device numbers it)
PUMP = "pump"
#: one coolant filter
FILTER = "filter"
#: one coolant reservoir / expansion tank
RESERVOIR = "reservoir"
#: one leak detector (rope, spot or tray sensor)
DETECTOR = "detector"
#: the tags that name a component of the unit; a sample with none of them is the unit itself
COMPONENT_TAGS = (SIDE, LOOP, PUMP, FILTER, RESERVOIR, DETECTOR)

# -- fields of a connector (side + loop) -----------------------------------------------------
SUPPLY_TEMP_C = "supply_temp_c"
RETURN_TEMP_C = "return_temp_c"
FLOW_LPM = "flow_lpm"
#: supply minus return pressure across the connector (on a ``filter`` sample: across the filter)
DIFFERENTIAL_PRESSURE_KPA = "differential_pressure_kpa"
SUPPLY_PRESSURE_KPA = "supply_pressure_kpa"
RETURN_PRESSURE_KPA = "return_pressure_kpa"
CONNECTOR_FIELDS = (SUPPLY_TEMP_C, RETURN_TEMP_C, FLOW_LPM, DIFFERENTIAL_PRESSURE_KPA,
                    SUPPLY_PRESSURE_KPA, RETURN_PRESSURE_KPA)
#: heat carried away, W: per loop on a connector sample, or the unit's total on the unit sample
HEAT_REMOVED_W = "heat_removed_w"
#: the unit's rated cooling capacity as the device reports it, W (unit sample)
COOLING_CAPACITY_W = "cooling_capacity_w"

# -- component fields -------------------------------------------------------------------------
#: a word of the component's vocabulary (:data:`VOCABULARY_OF`); vendor word in ``state_raw``
STATE = "state"
SPEED_PCT = "speed_pct"
SPEED_RPM = "speed_rpm"
#: hours of service a filter has given (cumulative)
SERVICE_HOURS = "service_hours"
LEVEL_PCT = "level_pct"

#: component tag -> the state vocabulary of its ``state`` field ("" key: the unit itself)
VOCABULARY_OF: dict[str, str] = {PUMP: PUMP_VOCABULARY, FILTER: STATUS, RESERVOIR: STATUS, DETECTOR: LEAK, "": UNIT}
