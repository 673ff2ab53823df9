"""Open-file limit for processes that hold one socket per device.

The twin of the full site binds ≈52,700 sockets and a collector polling it may
hold thousands of connections; the usual default soft limit (1,024, here
20,000) would make the 1,025th (or 20,001st) bind fail with ``Too many open files``.
"""
from __future__ import annotations

import resource

__all__ = ["raise_open_file_limit"]


def raise_open_file_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE to at least ``needed`` (plus head room) where the system allows.

    The soft limit goes up to the hard limit; a privileged process also raises the
    hard limit (up to ``fs.nr_open``).  Returns the soft limit in force afterwards,
    so the caller can say clearly when it is still too low.
    """
    want = needed + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                ceiling = int(f.read())
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, ceiling), min(want, ceiling)))
            return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (OSError, ValueError):
            pass  # unprivileged: the hard limit stays
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
