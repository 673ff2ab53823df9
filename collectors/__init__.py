"""Protocol collectors: each subpackage turns one protocol's replies into Samples.

Data flows one way: inventory -> scheduler -> collector -> samples -> sinks/alerts.
Nothing in this package imports from ``sinks``, ``alerts`` or ``dashboards``; the
sample type they yield lives in ``contract`` (contract/sample.py).
"""
