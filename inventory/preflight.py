"""What ``dcim run`` would refuse at start that the file's shapes cannot say.

The loader checks shapes and references; a credential can still be
unreadable on the collector host (an unset variable, a secret file that group
or others can read).  ``dcim inventory check`` runs these checks too, so a
site that checks OK runs; each problem names the credential field that points
at the secret, never its value.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from inventory.model import Site
from inventory.secrets import SecretError

__all__ = ["secret_problems"]


def secret_problems(site: Site, environ: Mapping[str, str] | None = None) -> list[tuple[tuple, str]]:
    """``(inventory path, message)`` for every secret a polled device needs and cannot get.

    Each credential set is resolved once; the problem is reported at the set
    (``credentials.NAME.FIELD``), with the first device that needs it.
    """
    env = os.environ if environ is None else environ
    problems: list[tuple[tuple, str]] = []
    done: set[str] = set()
    for dev in site.polled_devices():
        name = site.credential_name(dev)
        if not name or name in done or name not in site.credentials:
            continue
        done.add(name)
        for key, ref in site.credentials[name].secret_refs().items():
            try:
                ref.resolve(environ=dict(env))
            except SecretError as exc:
                problems.append((("credentials", name, key), f"{exc} (needed by device {dev.id})"))
    return problems
