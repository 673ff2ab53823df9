"""The ``dcim`` sub-commands of each area, one module each: ``alerts``, ``dashboards``,
``report``, ``storage``, ``derived``, ``agent``, ``traps``, ``simulate``.

Every entry point lives here, above everything it drives, so no package below
``dcim`` imports ``dcim``; each module has a ``register(subparsers)`` that
:mod:`dcim.cli` calls.
"""
