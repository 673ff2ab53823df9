"""What a device's poll would refuse on every tick, found before ``dcim run`` starts.

``dcim inventory check`` asks this for every polled device, so a site that
checks OK does not poll a Modbus meter with no profile, or an SNMP agent
forced to a profile that does not exist, as a ``config`` error every interval.
"""
from __future__ import annotations

from collectors.registry import collector_class

__all__ = ["profile_problem"]


def profile_problem(protocol: str, profile: str) -> str | None:
    """Why ``profile`` cannot serve ``protocol`` (unknown name, broken file), or None."""
    try:
        collector_class(protocol)
    except (ValueError, ImportError) as exc:
        return f"no collector for protocol {protocol}: {exc}"
    if protocol.startswith("modbus"):
        from collectors.modbus.profile import ProfileError, load_profile, profile_names

        if profile in ("", "auto"):
            return ("Modbus devices cannot be identified automatically; name a profile "
                    f"(known: {', '.join(profile_names())})")
        try:
            load_profile(profile)
        except (ProfileError, OSError) as exc:
            return str(exc).splitlines()[0][:300]
        return None
    if protocol == "snmp" and profile not in ("", "auto"):
        from collectors.snmp.profiles import ProfileError, default_profiles

        try:
            known = default_profiles()
        except ProfileError as exc:
            return f"the shipped SNMP profiles do not load: {str(exc).splitlines()[0][:200]}"
        if profile not in known:
            return f"unknown SNMP profile {profile!r} (known: {', '.join(sorted(known))})"
    return None
