"""Redfish BMCs -> ``node`` samples: chassis power, PSUs, temperatures and fans.

``walk(base_tags, time_ns)`` is a sans-I/O generator: it yields each path it
needs and is sent the JSON resource back, starting at the service root and
following ``@odata.id`` links only (never guessed paths, since vendors name
chassis ``1``, ``1U`` or ``System.Embedded.1``), reading both schema generations:

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
``samples_from_resources(get, ...)`` drives the same walk with a blocking getter.

``RedfishCollector`` drives it on the service's event loop with the project's
keep-alive HTTP client (``httpget.py``): one connection and one logged-in
session per BMC (a session login per poll would load the BMC and fill its
session table), a fresh login once on 401.  Why not the DMTF ``redfish``
library: it runs requests/urllib3 in threads, costing ~10x the CPU per poll
(GIL contention, proxy and .netrc look-ups per request), follows redirects to
any host, and logs whole replies.

Bounds, for a BMC that lies: bodies over ``max_body`` (8 MiB) are refused as
``protocol`` before they are read whole; redirects are followed only within the
configured scheme, host and port (a redirect elsewhere is a ``protocol`` error
naming the host, so neither the request nor the credentials leave), at most
five hops, a loop is ``protocol``; a reply that is not HTTP or not JSON is
``protocol``, silence ``timeout``, a refused connection ``unreachable``.
Neither reply bodies nor session tokens are ever logged or put in messages.

TLS (``redfish-https``) is verified by default against ``ca_bundle`` when set,
else certifi's bundle; ``tls_verify: false`` is the only way to turn it off.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

from collectors.base import Collector, PollError, Target
from collectors.deadline import deadline
from collectors.gpu.httpget import DEFAULT_MAX_BODY, HttpGetter
from collectors.gpu.redfish_cdu import cdu_walk
from collectors.gpu.redfish_links import Getter, ResourceMissing, Walk
from collectors.gpu.redfish_links import link as _link, members as _members, num as _num, optional as _optional
from collectors.gpu.redfish_links import ident as _ident, reading as _reading
from contract.sample import Sample, now_ns
from contract.protocols import PROTOCOLS, served_by

__all__ = ["walk", "samples_from_resources", "RedfishCollector", "ResourceMissing"]

ROOT = "/redfish/v1"
SESSIONS = "/redfish/v1/SessionService/Sessions"
#: Sensors are one GET each; they are read only when no Thermal/ThermalSubsystem data exists.
MAX_SENSORS = 200
#: Redirect hops followed within one BMC before the reply counts as a loop.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: the inventory kind whose Redfish service is read for its CDUs only
CDU_KIND = "cdu"


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


def walk(base_tags: dict[str, str], time_ns: int, kind: str = "") -> Walk:
    """Walk ``/redfish/v1`` -> Chassis -> each chassis' power and thermal resources, and CDUs.

    A generator (sans-I/O): it yields each path it needs and is sent the resource
    as a dict, or thrown :class:`ResourceMissing` for a 404; it returns the samples.
    The blocking (:func:`samples_from_resources`) and the asyncio driver
    (:class:`RedfishCollector`) share it, so both read a BMC the same way.
    An inventory ``kind: cdu`` device is read for its CDUs only
    (``ThermalEquipment/CDUs``, :mod:`collectors.gpu.redfish_cdu`), not its chassis;
    any other service whose root links ``ThermalEquipment`` (a rack manager) gives
    both its chassis and its CDUs.
    """
    root = yield ROOT
    out: list[Sample] = []

    def emit(tags: dict[str, str], fields: dict[str, Any]) -> None:
        if fields:
            out.append(Sample("node", tags, fields, time_ns))

    chassis_list = [] if kind == CDU_KIND else (yield from _members(_link(root, "Chassis")))
    for chassis in chassis_list:
        cid = _ident(chassis)
        ctags = {**base_tags, "chassis": cid}
        power = (yield from _optional(_link(chassis, "Power")))
        thermal = (yield from _optional(_link(chassis, "Thermal")))
        env = (yield from _optional(_link(chassis, "EnvironmentMetrics")))
        psubsys = (yield from _optional(_link(chassis, "PowerSubsystem")))
        tsubsys = (yield from _optional(_link(chassis, "ThermalSubsystem")))

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
        new_psus = (yield from _members(_link(psubsys, "PowerSupplies"))) if psubsys is not None else []
        if new_psus:
            for psu in new_psus:
                fields = _health(psu)
                metrics = (yield from _optional(_link(psu, "Metrics")))
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

        def sensor_list() -> Walk:
            nonlocal sensors
            if sensors is None:
                sensors = (yield from _members(_link(chassis, "Sensors"), limit=MAX_SENSORS))
            return sensors

        # temperatures: older Thermal, else ThermalSubsystem/ThermalMetrics, else Sensors
        temps_done = False
        if thermal is not None:
            for sensor in thermal.get("Temperatures", []) or []:
                if isinstance(sensor, dict) and (c := _num(sensor.get("ReadingCelsius"))) is not None:
                    emit({**ctags, "sensor": str(sensor.get("Name") or sensor.get("MemberId"))}, {"temp_c": c})
                    temps_done = True
        if not temps_done and tsubsys is not None:
            tm = (yield from _optional(_link(tsubsys, "ThermalMetrics")))
            for sensor in (tm or {}).get("TemperatureReadingsCelsius", []) or []:
                if isinstance(sensor, dict) and (c := _num(sensor.get("Reading"))) is not None:
                    emit({**ctags, "sensor": str(sensor.get("DeviceName") or sensor.get("DataSourceUri"))},
                         {"temp_c": c})
                    temps_done = True
        if not temps_done:
            for sensor in (yield from sensor_list()):
                if sensor.get("ReadingType") == "Temperature" and (c := _num(sensor.get("Reading"))) is not None:
                    emit({**ctags, "sensor": str(sensor.get("Name") or sensor.get("Id"))}, {"temp_c": c})

        # fans: newer ThermalSubsystem/Fans, else older Thermal
        new_fans = (yield from _members(_link(tsubsys, "Fans"))) if tsubsys is not None else []
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
            for sensor in (yield from sensor_list()):
                if sensor.get("ReadingType") == "Rotational" and (r := _num(sensor.get("Reading"))) is not None:
                    field = "speed_pct" if sensor.get("ReadingUnits") in ("%", "Percent") else "speed_rpm"
                    emit({**ctags, "fan": str(sensor.get("Name") or sensor.get("Id"))}, {field: r})
    if kind == CDU_KIND or _link(root, "ThermalEquipment"):
        out.extend((yield from cdu_walk(root, base_tags, time_ns)))
    return out


def samples_from_resources(get: Getter, base_tags: dict[str, str], time_ns: int, kind: str = "") -> list[Sample]:
    """:func:`walk` with a blocking ``get(path) -> dict`` (raising ResourceMissing for a 404)."""
    gen = walk(base_tags, time_ns, kind)
    try:
        path = next(gen)
        while True:
            try:
                resource = get(path)
            except ResourceMissing as exc:
                path = gen.throw(exc)
                continue
            path = gen.send(resource)
    except StopIteration as done:
        return done.value


# --------------------------------------------------------------------------- collector


class _Unauthorized(Exception):
    pass


class _Bmc:
    """One BMC's state between polls: its session and the request headers built from it.

    The lock keeps two polls of one BMC (an overrunning one and the next) from
    sharing a connection or racing a login.
    """

    __slots__ = ("lock", "headers", "session_path", "logged_in")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.headers = _BASE_HEADERS
        self.session_path: str | None = None
        self.logged_in = False


_BASE_HEADERS = "Accept: application/json\r\nOData-Version: 4.0\r\n"


class RedfishCollector(Collector):
    """Polls BMCs over ``redfish`` (http) or ``redfish-https`` on the event loop."""

    protocols = served_by(f"{__name__}:RedfishCollector")  # its rows in contract/protocols.py

    def __init__(self, max_body: int = DEFAULT_MAX_BODY) -> None:
        self._http = HttpGetter(max_body)
        self._bmcs: dict[tuple, _Bmc] = {}
        self._tls: dict[tuple, ssl.SSLContext] = {}
        self._targets: dict[tuple, Target] = {}

    async def poll(self, target: Target) -> list[Sample]:
        where = target.address()
        tls = self._tls_context(target)
        key = self._key(target)
        bmc = self._bmcs.get(key)
        if bmc is None:
            bmc = self._bmcs[key] = _Bmc()
        self._targets[key] = target
        # Bound the walk: each request has timeout_s, and the whole walk gets a few of them.
        budget = target.timeout_s * float(target.options.get("walk_timeouts", 4))
        try:
            async with deadline(budget):
                async with bmc.lock:
                    return await self._poll_locked(bmc, target, tls, where)
        except TimeoutError:
            raise PollError("timeout", f"{where}: Redfish walk ran past its {budget:g}s deadline") from None

    # -- helpers

    @staticmethod
    def _key(target: Target) -> tuple:
        return (target.protocol, target.host, target.port, RedfishCollector._username(target),
                RedfishCollector._verify(target), target.options.get("ca_bundle"))

    @staticmethod
    def _username(target: Target) -> str | None:
        return target.secret("username") or target.options.get("username")

    @staticmethod
    def _verify(target: Target) -> bool:
        value = target.options.get("tls_verify", True)
        return value if isinstance(value, bool) else str(value).lower() not in ("0", "false", "no", "off")

    @staticmethod
    def _port(target: Target) -> int:
        return target.port or PROTOCOLS[target.protocol].default_port

    def _tls_context(self, target: Target) -> ssl.SSLContext | None:
        """One context per (verification, CA file), built once: loading a CA bundle costs milliseconds."""
        if not PROTOCOLS[target.protocol].tls:
            return None
        verify = self._verify(target)
        cafile = None
        if verify:
            cafile = target.options.get("ca_bundle")
            if not cafile:
                import certifi
                cafile = certifi.where()
        key = (verify, cafile)
        ctx = self._tls.get(key)
        if ctx is None:
            if not verify:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            else:
                if not os.path.isfile(cafile):
                    raise PollError("config", f"{target.address()}: ca_bundle {cafile} is not a readable file")
                try:
                    ctx = ssl.create_default_context(cafile=cafile)
                except (OSError, ssl.SSLError) as exc:
                    raise PollError("config", f"{target.address()}: ca_bundle {cafile} is not a PEM CA bundle "
                                              f"({type(exc).__name__})") from None
            self._tls[key] = ctx
        return ctx

    async def _poll_locked(self, bmc: _Bmc, target: Target, tls: ssl.SSLContext | None, where: str) -> list[Sample]:
        username, password = self._username(target), target.secret("password")
        for attempt in (1, 2):
            if username and password and not bmc.logged_in:
                await self._login(bmc, target, tls, where, username, password)
            try:
                return await self._walk(bmc, target, tls, where)
            except _Unauthorized as exc:
                if not (username and password):
                    raise PollError("auth", f"{where}: HTTP 401 for {exc} (no credentials configured)") from None
                # the BMC expired our session: log in again, once (the old token is dead; no logout)
                bmc.logged_in, bmc.headers, bmc.session_path = False, _BASE_HEADERS, None
                if attempt == 2:
                    raise PollError("auth", f"{where}: HTTP 401 for {exc} after a fresh session login") from None
        raise PollError("internal", f"{where}: unreachable code")

    async def _fetch(self, method: str, path: str, target: Target, tls: ssl.SSLContext | None, where: str, *,
                     headers: str, body: bytes = b""):
        """One request, following same-origin redirects only (so credentials never leave the BMC)."""
        seen = {path}
        port = self._port(target)
        for _ in range(MAX_REDIRECTS + 1):
            reply = await self._http.request(method, target.host, port, path, target.timeout_s,
                                             headers=headers, body=body, tls=tls)
            if reply.status not in _REDIRECTS:
                return path, reply
            path = _same_origin_path(reply.headers.get("location", ""), target, port, where)
            if path in seen:
                raise PollError("protocol", f"{where}: redirect loop at {path}")
            seen.add(path)
            if reply.status == 303:
                method, body = "GET", b""
        raise PollError("protocol", f"{where}: more than {MAX_REDIRECTS} redirects (last to {path})")

    async def _login(self, bmc: _Bmc, target: Target, tls: ssl.SSLContext | None, where: str,
                     username: str, password: str) -> None:
        """``POST SessionService/Sessions``; a BMC without a session service gets HTTP Basic instead."""
        sessions = SESSIONS
        _, root = await self._fetch("GET", ROOT, target, tls, where, headers=_BASE_HEADERS)
        if root.status == 200:
            link = _link(_json(root.body, where, ROOT).get("Links") or {}, "Sessions")
            if link and link.startswith("/"):
                sessions = link
        payload = json.dumps({"UserName": username, "Password": password}).encode()
        _, reply = await self._fetch("POST", sessions, target, tls, where, body=payload,
                                     headers=_BASE_HEADERS + "Content-Type: application/json\r\n")
        if reply.status in (401, 403):
            raise PollError("auth", f"{where}: session login refused with HTTP {reply.status} (check username/password)")
        if reply.status in (404, 405, 501):
            basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            bmc.headers, bmc.session_path, bmc.logged_in = _BASE_HEADERS + f"Authorization: Basic {basic}\r\n", None, True
            return
        token = reply.headers.get("x-auth-token", "")
        if reply.status not in (200, 201) or not token or "\r" in token or "\n" in token:
            raise PollError("protocol", f"{where}: session login answered HTTP {reply.status} without a usable X-Auth-Token")
        location = reply.headers.get("location", "")
        try:
            bmc.session_path = _same_origin_path(location, target, self._port(target), where) if location else None
        except PollError:
            bmc.session_path = None  # a session elsewhere is not ours to delete
        bmc.headers, bmc.logged_in = _BASE_HEADERS + f"X-Auth-Token: {token}\r\n", True

    async def _walk(self, bmc: _Bmc, target: Target, tls: ssl.SSLContext | None, where: str) -> list[Sample]:
        gen = walk(target.tags, now_ns(), target.kind)
        try:
            path = next(gen)
            while True:
                _, reply = await self._fetch("GET", path, target, tls, where, headers=bmc.headers)
                status = reply.status
                if status == 200:
                    path = gen.send(_json(reply.body, where, path))
                elif status == 404:
                    try:
                        path = gen.throw(ResourceMissing(path))
                    except ResourceMissing:
                        raise PollError("device", f"{where}: {path} not found (no Redfish service root?)") from None
                elif status == 401:
                    raise _Unauthorized(path)
                elif status == 403:
                    raise PollError("auth", f"{where}: HTTP 403 for {path}")
                else:
                    raise PollError("device", f"{where}: HTTP {status} for {path}")
        except StopIteration as done:
            samples = done.value
        finally:
            gen.close()
        if not samples:
            if target.kind == CDU_KIND:
                raise PollError("decode", f"{where}: no CDU under {ROOT}/ThermalEquipment/CDUs")
            raise PollError("decode", f"{where}: no chassis power or thermal readings under {ROOT}/Chassis")
        return samples

    async def close(self) -> None:
        """Log out of every session (best effort, 5 s in all), then close the connections."""
        async def logout(key: tuple, bmc: _Bmc) -> None:
            target = self._targets.get(key)
            if target is None or not bmc.session_path:
                return
            try:
                await self._http.request("DELETE", target.host, self._port(target), bmc.session_path, target.timeout_s,
                                         headers=bmc.headers, tls=self._tls_context(target))
            except PollError:
                pass  # the BMC expires sessions anyway
        bmcs, self._bmcs = self._bmcs, {}
        logouts = [asyncio.ensure_future(logout(k, b)) for k, b in bmcs.items()]
        try:
            if logouts:
                await asyncio.wait(logouts, timeout=5)
        finally:
            # also when the stop's budget cancels this close: logouts left running would go on
            # competing with the writer's flush (on a loaded full-site shard, 800 of them held the
            # stop 3 s past its budget)
            for t in logouts:
                t.cancel()
        await self._http.close()


def _json(body: bytes, where: str, path: str) -> dict:
    """A reply body as a JSON object; never quotes the body (it may be huge, or carry secrets)."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PollError("protocol", f"{where}: {path} is not JSON ({len(body)} bytes)") from None
    if not isinstance(obj, dict):
        raise PollError("protocol", f"{where}: {path} is not a JSON object")
    return obj


def _same_origin_path(location: str, target: Target, port: int, where: str) -> str:
    """The path of a redirect ``Location`` if it stays on the BMC's scheme, host and port; else PollError."""
    if not location:
        raise PollError("protocol", f"{where}: redirect without a Location")
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        scheme = "https" if PROTOCOLS[target.protocol].tls else "http"
        try:
            other_port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            other_port = -1
        if (parts.scheme or scheme) != scheme or (parts.hostname or "") != target.host.lower() or other_port != port:
            shown = f"{parts.scheme or scheme}://{parts.netloc}"[:120]
            raise PollError("protocol", f"{where}: redirect to another host, {shown}, not followed")
    path = parts.path or "/"
    if not path.startswith("/"):
        raise PollError("protocol", f"{where}: relative redirect {path[:80]!r} not supported")
    return path + (f"?{parts.query}" if parts.query else "")
