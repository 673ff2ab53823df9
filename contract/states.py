"""State vocabularies: the words a state field may hold, whatever the vendor says.

Vendors name the same condition differently (APC ``onBattery``, UPS-MIB
``battery(5)``, CyberPower ``onBattery``, Eaton XUPS ``battery(5)``); a rule,
a dashboard or the twin would need one copy per vendor.  Instead each profile
maps its vendor's words onto one vocabulary at the edge (``vocabulary:`` and
``states:`` in the SNMP and Modbus profiles) and the decoder writes two
fields: ``<field>`` (e.g. ``state``) with the vocabulary word and
``<field>_raw`` with the vendor's own word, for the person who reads the
vendor's manual.  The profile loaders refuse a mapping onto a word that is
not in the vocabulary (:func:`mapping_problems`).

Every vocabulary has ``unknown``: what a raw value outside the profile's
``enum`` decodes to (its ``<field>_raw`` then says ``unknown(<n>)``).
"""
from __future__ import annotations

from typing import Iterable, Mapping

__all__ = ["VOCABULARIES", "UNKNOWN", "RAW_SUFFIX", "raw_field", "mapping_problems",
           "UPS_OUTPUT", "UPS_BATTERY", "OUTLET", "BREAKER", "PUMP", "UNIT", "LEAK", "CONTACT",
           "STATUS", "ALARM", "LOAD", "LINE"]

UNKNOWN = "unknown"
#: the vendor's own word goes to ``<field>_raw`` beside the vocabulary word in ``<field>``
RAW_SUFFIX = "_raw"

#: UPS output (``ups``, ``stage=output``, field ``state``): where the load is fed from
UPS_OUTPUT = "ups_output"
#: UPS battery (``ups``, ``stage=battery``, field ``state``)
UPS_BATTERY = "ups_battery"
#: a switched PDU outlet (``pdu``, ``outlet=N``, field ``state``)
OUTLET = "outlet"
#: a circuit breaker
BREAKER = "breaker"
#: one pump (``cdu``, ``pump=N``, field ``state``)
PUMP = "pump"
#: a cooling unit's run state (chiller, CDU, CRAH, in-row cooler: field ``state`` or ``unit_control``)
UNIT = "unit"
#: a leak (rope or spot) sensor
LEAK = "leak"
#: a door or dry contact
CONTACT = "contact"
#: a generic health word: fine or needs attention (battery replace indicator, PSU alarm, contact alarm)
STATUS = "status"
#: a graded alarm level (``alarm_state``)
ALARM = "alarm"
#: a PDU bank/phase load band (``load_state``)
LOAD = "load"
#: the utility input line as the UPS sees it (``stage=input``, field ``state``)
LINE = "line"

#: vocabulary -> its words (what each means: docs/conventions.md, "States")
VOCABULARIES: dict[str, tuple[str, ...]] = {
    UPS_OUTPUT: ("normal", "battery", "bypass", "boost", "buck", "off", "other", UNKNOWN),
    UPS_BATTERY: ("normal", "charging", "discharging", "low", "depleted", "testing", "fault", "absent", UNKNOWN),
    OUTLET: ("on", "off", "rebooting", UNKNOWN),
    BREAKER: ("closed", "open", "tripped", UNKNOWN),
    PUMP: ("running", "standby", "off", "fault", UNKNOWN),
    UNIT: ("running", "idle", "standby", "off", "alarm", "maintenance", UNKNOWN),
    LEAK: ("dry", "leak", "fault", UNKNOWN),
    CONTACT: ("closed", "open", "fault", UNKNOWN),
    STATUS: ("ok", "fault", UNKNOWN),
    ALARM: ("ok", "info", "warning", "critical", UNKNOWN),
    LOAD: ("low", "normal", "near_overload", "overload", UNKNOWN),
    LINE: ("normal", "over_voltage", "under_voltage", "frequency_fault", "outage", UNKNOWN),
}


def raw_field(field: str) -> str:
    """The field that keeps the vendor's word beside the vocabulary word in ``field``."""
    return field + RAW_SUFFIX


def mapping_problems(vocabulary: str, words: Iterable[str], states: Mapping[str, str]) -> list[str]:
    """Why a profile's ``enum`` words plus ``states`` mapping do not fit ``vocabulary`` (empty: they do).

    ``words`` are the vendor's words (the ``enum`` values); ``states`` maps some of
    them onto vocabulary words, and a word not in ``states`` must already be one.
    """
    allowed = VOCABULARIES.get(vocabulary)
    if allowed is None:
        return [f"unknown vocabulary {vocabulary!r} (known: {', '.join(sorted(VOCABULARIES))})"]
    problems = []
    words = list(words)
    for vendor, word in states.items():
        if vendor not in words:
            problems.append(f"{vendor!r} (under states:) is not one of the enum's words")
        if word not in allowed:
            problems.append(f"{vendor!r} maps onto {word!r}, which is not in vocabulary {vocabulary} "
                            f"({', '.join(allowed)})")
    for vendor in words:
        if vendor not in states and vendor not in allowed:
            problems.append(f"enum word {vendor!r} is not in vocabulary {vocabulary} ({', '.join(allowed)}): "
                            f"map it under states:")
    return problems
