"""Redfish BMCs -> ``node`` samples: chassis power, PSUs, temperatures and fans.

``samples_from_resources(get, base_tags, time_ns)`` is pure apart from the
``get(path) -> dict`` it is handed: it starts at the service root and follows
``@odata.id`` links only (never guessed paths, since vendors name chassis
``1``, ``1U`` or ``System.Embedded.1``), reading both schema generations:

- older ``Power`` / ``Thermal`` (deprecated in 2020 but what most BMCs in the
  field still serve): PowerControl[].PowerConsumedWatts, PowerSupplies[],
  Temperatures[].ReadingCelsius, Fans[].Reading + ReadingUnits;
- newer ``PowerSubsystem`` (PSU collection -> each PSU's ``Metrics``),
  ``EnvironmentMetrics`` (PowerWatts, TemperatureCelsius) and
  ``ThermalSubsystem`` (Fans collection, ThermalMetrics).

Chassis power is emitted from both, tagged ``source=power`` or
``source=environment_metrics``, so a dashboard can pick one and a mismatch
shows up.  PSUs, fans and temperatures come from the newer resources when a
chassis has them and from the older ones otherwise, so each appears once.

``RedfishCollector`` runs the blocking DMTF ``redfish`` library in a bounded
thread pool, keeps one logged-in session per BMC (a session login per poll
would load the BMC and fill its session table), logs in again once on 401, and
turns library/transport failures into PollError kinds.

TLS: the ``redfish`` library (3.x) passes ``verify=False`` to requests unless
a CA file is given, i.e. it does *not* verify certificates by default.  We
therefore always hand it a CA file when verification is on: ``ca_bundle`` when
set, else certifi's bundle.  ``tls_verify: false`` is the only way to turn
verification off.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
import warnings
from typing import Any, Callable

from collectors.base import Collector, PollError, Target
from collectors.sample import Sample, now_ns

__all__ = ["samples_from_resources", "RedfishCollector", "ResourceMissing"]

ROOT = "/redfish/v1"

# The library warns (UserWarning) about each vendor quirk it works around, on every poll;
# the quirks are not actionable for an operator.  warnings.catch_warnings is not
# thread-safe, so this is a module-level filter on the library's own modules.
warnings.filterwarnings("ignore", category=UserWarning, module=r"redfish(\.|$)")
#: Sensors are one GET each; they are read only when no Thermal/ThermalSubsystem data exists.
MAX_SENSORS = 200


class ResourceMissing(LookupError):
    """``get`` raises this for a 404: the resource is optional, the walk goes on."""


Getter = Callable[[str], dict]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _link(obj: Any, key: str) -> str | None:
    """The ``@odata.id`` of ``obj[key]`` (a link object), without any fragment."""
    target = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(target, dict) and isinstance(target.get("@odata.id"), str):
        return target["@odata.id"].split("#", 1)[0] or None
    return None


def _members(get: Getter, path: str | None, limit: int = 256) -> list[dict]:
    """Fetch a collection and each member it links to (missing members are skipped; at most ``limit``)."""
    coll = _optional(get, path)
    out = []
    for member in ((coll or {}).get("Members", []) or [])[:limit]:
        link = member.get("@odata.id") if isinstance(member, dict) else None
        if isinstance(link, str):
            res = _optional(get, link.split("#", 1)[0])
            if res is not None:
                out.append(res)
    return out


def _optional(get: Getter, path: str | None) -> dict | None:
    if not path:
        return None
    try:
        res = get(path)
    except ResourceMissing:
        return None
    return res if isinstance(res, dict) else None


def _health(obj: dict) -> dict[str, Any]:
    status = obj.get("Status")
    fields: dict[str, Any] = {}
    if isinstance(status, dict):
        if isinstance(status.get("Health"), str):
            fields["health"] = status["Health"]
            fields["healthy"] = status["Health"] == "OK"
        if isinstance(status.get("State"), str):
            fields["state"] = status["State"]
    return fields


def _reading(obj: Any, key: str) -> float | None:
    """``obj[key]["Reading"]`` of a newer-schema SensorExcerpt."""
    excerpt = obj.get(key) if isinstance(obj, dict) else None
    return _num(excerpt.get("Reading")) if isinstance(excerpt, dict) else None


def samples_from_resources(get: Getter, base_tags: dict[str, str], time_ns: int) -> list[Sample]:
    """Walk ``/redfish/v1`` -> Chassis -> each chassis' power and thermal resources."""
    root = get(ROOT)
    out: list[Sample] = []

    def emit(tags: dict[str, str], fields: dict[str, Any]) -> None:
        if fields:
            out.append(Sample("node", tags, fields, time_ns))

    for chassis in _members(get, _link(root, "Chassis")):
        cid = str(chassis.get("Id") or chassis.get("@odata.id", "?").rstrip("/").rsplit("/", 1)[-1])
        ctags = {**base_tags, "chassis": cid}
        power = _optional(get, _link(chassis, "Power"))
        thermal = _optional(get, _link(chassis, "Thermal"))
        env = _optional(get, _link(chassis, "EnvironmentMetrics"))
        psubsys = _optional(get, _link(chassis, "PowerSubsystem"))
        tsubsys = _optional(get, _link(chassis, "ThermalSubsystem"))

        # chassis power, from each source present
        if power is not None:
            for pc in power.get("PowerControl", []) or []:
                watts = _num(pc.get("PowerConsumedWatts")) if isinstance(pc, dict) else None
                if watts is not None:  # the first entry is the chassis total; later ones are sub-domains
                    emit({**ctags, "source": "power"}, {"power_w": watts})
                    break
        if env is not None:
            fields = {}
            if (w := _reading(env, "PowerWatts")) is not None:
                fields["power_w"] = w
            if (t := _reading(env, "TemperatureCelsius")) is not None:
                fields["temp_c"] = t
            if (e := _reading(env, "EnergykWh")) is not None:
                fields["energy_kwh"] = e
            emit({**ctags, "source": "environment_metrics"}, fields)

        # PSUs: newer PowerSubsystem when it lists any, else the older Power resource
        new_psus = _members(get, _link(psubsys, "PowerSupplies")) if psubsys is not None else []
        if new_psus:
            for psu in new_psus:
                fields = _health(psu)
                metrics = _optional(get, _link(psu, "Metrics"))
                if metrics is not None:
                    for key, field in (("InputPowerWatts", "input_power_w"), ("OutputPowerWatts", "output_power_w"),
                                       ("InputVoltage", "input_voltage_v"), ("InputCurrentAmps", "input_current_a"),
                                       ("EnergykWh", "energy_kwh"), ("FrequencyHz", "frequency_hz")):
                        if (v := _reading(metrics, key)) is not None:
                            fields[field] = v
                emit({**ctags, "psu": str(psu.get("Id") or psu.get("Name"))}, fields)
        elif power is not None:
            for psu in power.get("PowerSupplies", []) or []:
                if not isinstance(psu, dict):
                    continue
                fields = _health(psu)
                if (v := _num(psu.get("PowerInputWatts"))) is not None:
                    fields["input_power_w"] = v
                out_w = _num(psu.get("PowerOutputWatts"))
                if out_w is None:
                    out_w = _num(psu.get("LastPowerOutputWatts"))
                if out_w is not None:
                    fields["output_power_w"] = out_w
                if (v := _num(psu.get("LineInputVoltage"))) is not None:
                    fields["input_voltage_v"] = v
                emit({**ctags, "psu": str(psu.get("MemberId") or psu.get("Name"))}, fields)

        sensors: list[dict] | None = None  # the chassis' Sensors collection, fetched only if needed

        def sensor_list() -> list[dict]:
            nonlocal sensors
            if sensors is None:
                sensors = _members(get, _link(chassis, "Sensors"), limit=MAX_SENSORS)
            return sensors

        # temperatures: older Thermal, else ThermalSubsystem/ThermalMetrics, else Sensors
        temps_done = False
        if thermal is not None:
            for sensor in thermal.get("Temperatures", []) or []:
                if isinstance(sensor, dict) and (c := _num(sensor.get("ReadingCelsius"))) is not None:
                    emit({**ctags, "sensor": str(sensor.get("Name") or sensor.get("MemberId"))}, {"temp_c": c})
                    temps_done = True
        if not temps_done and tsubsys is not None:
            tm = _optional(get, _link(tsubsys, "ThermalMetrics"))
            for sensor in (tm or {}).get("TemperatureReadingsCelsius", []) or []:
                if isinstance(sensor, dict) and (c := _num(sensor.get("Reading"))) is not None:
                    emit({**ctags, "sensor": str(sensor.get("DeviceName") or sensor.get("DataSourceUri"))},
                         {"temp_c": c})
                    temps_done = True
        if not temps_done:
            for sensor in sensor_list():
                if sensor.get("ReadingType") == "Temperature" and (c := _num(sensor.get("Reading"))) is not None:
                    emit({**ctags, "sensor": str(sensor.get("Name") or sensor.get("Id"))}, {"temp_c": c})

        # fans: newer ThermalSubsystem/Fans, else older Thermal
        new_fans = _members(get, _link(tsubsys, "Fans")) if tsubsys is not None else []
        fans_done = bool(new_fans)
        if new_fans:
            for fan in new_fans:
                speed = fan.get("SpeedPercent") if isinstance(fan.get("SpeedPercent"), dict) else {}
                fields = {}
                if (p := _num(speed.get("Reading"))) is not None:
                    fields["speed_pct"] = p
                if (r := _num(speed.get("SpeedRPM"))) is not None:
                    fields["speed_rpm"] = r
                emit({**ctags, "fan": str(fan.get("Id") or fan.get("Name"))}, fields)
        elif thermal is not None:
            for fan in thermal.get("Fans", []) or []:
                if not isinstance(fan, dict):
                    continue
                reading = _num(fan.get("Reading"))
                if reading is None:
                    reading = _num(fan.get("ReadingRPM"))  # pre-2016 schema
                if reading is None:
                    continue
                unit = fan.get("ReadingUnits") or "RPM"
                field = "speed_pct" if unit == "Percent" else "speed_rpm"
                emit({**ctags, "fan": str(fan.get("Name") or fan.get("FanName") or fan.get("MemberId"))},
                     {field: reading})
                fans_done = True
        if not fans_done:
            for sensor in sensor_list():
                if sensor.get("ReadingType") == "Rotational" and (r := _num(sensor.get("Reading"))) is not None:
                    field = "speed_pct" if sensor.get("ReadingUnits") in ("%", "Percent") else "speed_rpm"
                    emit({**ctags, "fan": str(sensor.get("Name") or sensor.get("Id"))}, {field: r})
    return out


# --------------------------------------------------------------------------- collector


class _Session:
    """One BMC's logged-in client; the lock keeps a late thread off a new poll's session."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()


class RedfishCollector(Collector):
    """Polls BMCs over ``redfish`` (http) or ``redfish-https`` with the DMTF library, in threads."""

    protocols = ("redfish", "redfish-https")

    def __init__(self, max_threads: int = 16) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="redfish")
        self._sessions: dict[tuple, _Session] = {}
        self._guard = threading.Lock()

    async def poll(self, target: Target) -> list[Sample]:
        loop = asyncio.get_running_loop()
        # Bound the walk: each request has timeout_s, and the whole walk gets a few of them.
        deadline = time.monotonic() + target.timeout_s * float(target.options.get("walk_timeouts", 4))
        return await loop.run_in_executor(self._pool, self._poll_blocking, target, deadline)

    # -- blocking side, runs in the pool

    def _key(self, target: Target) -> tuple:
        return (target.protocol, target.host, target.port, self._username(target),
                self._verify(target), target.options.get("ca_bundle"))

    @staticmethod
    def _username(target: Target) -> str | None:
        return target.secret("username") or target.options.get("username")

    @staticmethod
    def _verify(target: Target) -> bool:
        value = target.options.get("tls_verify", True)
        return value if isinstance(value, bool) else str(value).lower() not in ("0", "false", "no", "off")

    def _base_url(self, target: Target) -> str:
        scheme = "https" if target.protocol == "redfish-https" else "http"
        host = f"[{target.host}]" if ":" in target.host else target.host
        port = target.port or (443 if scheme == "https" else 80)
        return f"{scheme}://{host}:{port}"

    def _connect(self, target: Target) -> _Session:
        import redfish  # lazy: only Redfish targets pay for the import

        # The library logs request headers (X-Auth-Token included) at DEBUG and session
        # replies at INFO; a service running at DEBUG must not write BMC tokens to its log.
        logging.getLogger("redfish").setLevel(max(logging.WARNING, logging.getLogger("redfish").level))

        cafile = None
        if target.protocol == "redfish-https" and self._verify(target):
            cafile = target.options.get("ca_bundle")
            if not cafile:
                import certifi
                cafile = certifi.where()
            if not os.path.isfile(cafile):
                raise PollError("config", f"{target.address()}: ca_bundle {cafile} is not a readable file")
        username, password = self._username(target), target.secret("password")
        client = redfish.redfish_client(base_url=self._base_url(target), username=username, password=password,
                                        cafile=cafile, timeout=target.timeout_s, max_retry=0)
        if username and password:
            client.login(auth="session")
        return _Session(client)

    def _poll_blocking(self, target: Target, deadline: float) -> list[Sample]:
        where = target.address()
        key = self._key(target)
        with self._guard:
            session = self._sessions.get(key)
        try:
            for attempt in (1, 2):
                if session is None:
                    session = self._connect(target)
                    with self._guard:
                        self._sessions[key] = session
                held = session
                if not held.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise PollError("timeout", f"{where}: previous poll of this BMC still running")
                try:
                    return self._walk(held, target, deadline)
                except _Unauthorized:
                    # the BMC expired our session: log in again, once
                    with self._guard:
                        self._sessions.pop(key, None)
                    _logout(held)
                    session = None
                    if attempt == 2:
                        raise PollError("auth", f"{where}: HTTP 401 after a fresh session login") from None
                finally:
                    held.lock.release()
        except PollError:
            raise
        except Exception as exc:  # the library raises many unrelated types; classify them
            with self._guard:
                dropped = self._sessions.pop(key, None)
            if dropped is not None:
                _logout(dropped)
            raise _classify(exc, where) from None
        raise PollError("internal", f"{where}: unreachable code")

    def _walk(self, session: _Session, target: Target, deadline: float) -> list[Sample]:
        where = target.address()

        def get(path: str) -> dict:
            if time.monotonic() > deadline:
                raise PollError("timeout", f"{where}: Redfish walk ran past its deadline at {path}")
            resp = session.client.get(path)
            if resp.status == 404:
                raise ResourceMissing(path)
            if resp.status == 401:
                raise _Unauthorized(path)
            if resp.status == 403:
                raise PollError("auth", f"{where}: HTTP 403 for {path}")
            if resp.status != 200:
                raise PollError("device", f"{where}: HTTP {resp.status} for {path}")
            try:
                body = resp.dict
            except Exception:
                raise PollError("protocol", f"{where}: {path} is not JSON") from None
            if not isinstance(body, dict):
                raise PollError("protocol", f"{where}: {path} is not a JSON object")
            return body

        try:
            samples = samples_from_resources(get, target.tags, now_ns())
        except ResourceMissing as exc:
            raise PollError("device", f"{where}: {exc} not found (no Redfish service root?)") from None
        if not samples:
            raise PollError("decode", f"{where}: no chassis power or thermal readings under {ROOT}/Chassis")
        return samples

    async def close(self) -> None:
        with self._guard:
            sessions, self._sessions = list(self._sessions.values()), {}
        loop = asyncio.get_running_loop()
        if sessions:
            await asyncio.wait([loop.run_in_executor(self._pool, _logout, s) for s in sessions], timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Unauthorized(Exception):
    pass


def _logout(session: _Session) -> None:
    try:
        session.client.logout()
    except Exception:  # best effort: the BMC expires sessions anyway
        pass


def _classify(exc: BaseException, where: str) -> PollError:
    """Map redfish-library / requests exceptions to poll error kinds, without echoing secrets."""
    import requests
    from redfish.rest.v1 import (InvalidCredentialsError, JsonDecodingError, RetriesExhaustedError,
                                 ServerDownOrUnreachableError, SessionCreationError)

    cause = exc.__cause__ if isinstance(exc, RetriesExhaustedError) and exc.__cause__ else exc
    if isinstance(cause, (InvalidCredentialsError, SessionCreationError)):
        return PollError("auth", f"{where}: session login refused (check username/password)")
    if isinstance(cause, requests.exceptions.SSLError):
        return PollError("auth", f"{where}: TLS handshake or certificate verification failed "
                                 f"(set ca_bundle, or tls_verify: false for a lab BMC)")
    if isinstance(cause, (requests.exceptions.Timeout, TimeoutError)):
        return PollError("timeout", f"{where}: no reply within the request timeout")
    if isinstance(cause, requests.exceptions.ConnectionError):
        return PollError("unreachable", f"{where}: cannot connect ({type(cause).__name__})")
    if isinstance(cause, ServerDownOrUnreachableError):
        status = getattr(getattr(cause, "response", None), "status", None)
        if status in (401, 403):
            return PollError("auth", f"{where}: service root refused with HTTP {status}")
        return PollError("device", f"{where}: no Redfish service root (HTTP {status})")
    if isinstance(cause, (JsonDecodingError, ValueError)):
        return PollError("protocol", f"{where}: reply is not Redfish JSON")
    return PollError("internal", f"{where}: {type(cause).__name__}")
