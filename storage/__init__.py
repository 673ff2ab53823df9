"""Retention tiers and rollups: raw samples for days, 1-minute and hourly rollups for months and years.

See docs/storage.md.  ``tiers`` is the configuration, ``fields`` decides each
field's rollup from its meaning, ``influxql`` writes the statements, ``plan``
diffs them against what the server has, ``admin`` applies them (``dcim storage
init``/``backfill``), ``job`` is the project's own rollup for stores without
continuous queries (``dcim storage rollup``); the commands live in ``dcim/commands/storage.py``.
"""
