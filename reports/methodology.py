"""The methodology section printed in every HTML and PDF report (plain text, one paragraph per item).

Kept in one place so the PDF, the HTML and reports/README.md say the same thing.
"""
from __future__ import annotations

from reports.pue import DIESEL_KWH_PER_L, PueReport

__all__ = ["methodology"]


def methodology(r: PueReport) -> list[tuple[str, str]]:
    cat = {1: "UPS output (category 1)", 2: "PDU output (category 2)", 3: "IT equipment input (category 3)"}[r.category]
    return [
        ("Period", f"From {r.period_start} (inclusive) to {r.period_end} (exclusive), in UTC. Months are calendar "
                   "months in UTC."),
        ("Energy from counters", "The energy of a month is the meter's cumulative energy register at the end of the "
         "month minus its value at the start. Where no reading falls exactly on the boundary, the register is "
         "interpolated linearly between the readings on either side. A lost reading therefore loses no energy: it "
         "only lowers the coverage figure."),
        ("Resets and wraps", "When a register goes down, the step is bridged and listed in the bridging table. A "
         "drop from near a register maximum (32- or 31-bit) to near zero is a wrap: (maximum - before) + after is "
         "counted. Any other drop is a reset: the register is assumed to restart from zero and the value after the "
         "drop is counted."),
        ("Meter swaps", "Each meter counts only between its commissioned and decommissioned dates (UTC midnight) "
         "given in the site inventory; an old and a new meter each contribute their own side of the swap date."),
        ("Estimated energy", "Meters without an energy register may be integrated from power readings (trapezoid "
         "rule) when the operator asks for it; gaps over 15 minutes are not integrated. Such energy is an estimate "
         "and its share is shown as estimated_share."),
        ("E_DC", f"Total data centre energy: the sum of all boundary meters plus diesel fuel meters converted at "
                 f"{DIESEL_KWH_PER_L} kWh per litre."),
        ("E_IT", f"IT energy measured at the {cat}: the sum of all IT meters of that category."),
        ("PUE", "E_DC / E_IT (ISO/IEC 30134-2). The period PUE is the ratio of the period's sums, not the mean of "
                "the monthly figures."),
        ("REF", "Renewable energy factor (ISO/IEC 30134-3): renewable energy owned or controlled (on-site "
                "generation meters, PPA meters, and cancelled certificates for the month) divided by E_DC, "
                "capped at 1."),
        ("Hourly matching", "For each hour, the metered renewable supply (on-site plus PPA, certificates excluded) "
                            "is compared with E_DC of that hour; only the smaller of the two counts as matched."),
        ("CUE", "Carbon usage effectiveness: grid energy (boundary meters with source grid) times the month's grid "
                "emission factor (kgCO2e/kWh), summed, divided by E_IT. Diesel emissions are not included."),
        ("WUE", "Water usage effectiveness: litres from the water meters divided by E_IT (L/kWh); shown only when "
                "the site has water meters."),
        ("Coverage", "Share of the hours in which the meter was installed that hold at least one reading; a "
                     "month's coverage is the lowest among the boundary, IT and fuel meters."),
        ("Readings", f"Read from {r.source or 'raw readings'}. A rollup tier keeps each counter's last and highest "
                     "value per bucket; the last stands for the counter at the bucket's end (the final reading "
                     "inside it, at most one poll earlier), the highest bridges a reset or wrap inside the bucket. "
                     "Energy over whole buckets therefore equals the raw counters' difference to within one poll's "
                     "energy at each end of the period; coverage is counted in buckets, not polls."),
        ("Audit trail", "The exact InfluxQL statements and a SHA-256 over all readings used (canonical binary form: "
                        "reports/README.md) "
                        "are listed at the end; rerunning the queries must give the same hash."),
    ]
