"""Auditor reports: energy-based PUE (ISO/IEC 30134-2), REF, CUE, WUE and the EU EED export."""
