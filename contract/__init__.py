"""The contracts between the parts: names that producers and consumers both import.

This package is the bottom of the import graph and imports nothing from the
project: the sample type (:mod:`contract.sample`), the tag vocabulary
(:mod:`contract.tags`), the alert event schema (:mod:`contract.alert_event`),
the state vocabularies (:mod:`contract.states`), the protocol table
(:mod:`contract.protocols`), the ``cdu`` measurement (:mod:`contract.cooling`), the ``poll`` measurement (:mod:`contract.poll`), the ``writer`` measurement
(:mod:`contract.writer`) and the
derived measurements (:mod:`contract.derived`).
See contract/README.md.
"""
from contract.sample import FieldValue, Sample, now_ns
from contract.fields import FIELD_KINDS, field_kind
from contract.tags import LOCATION_TAGS, PLACE_TAGS, series_tags

__all__ = ["Sample", "FieldValue", "now_ns", "LOCATION_TAGS", "PLACE_TAGS", "series_tags", "FIELD_KINDS", "field_kind"]
