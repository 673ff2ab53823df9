"""Protocol collectors: each subpackage turns one protocol's replies into Samples.

Data flows one way: inventory -> scheduler -> collector -> samples -> sinks/alerts.
Nothing in this package imports from ``sinks``, ``alerts`` or ``dashboards``.
"""
from collectors.sample import Sample, now_ns

__all__ = ["Sample", "now_ns"]
