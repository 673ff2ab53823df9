"""The site model: site -> halls -> rows -> racks -> devices, validated with pydantic.

Every device also has a place in the power chain (``fed_by``: which upstream
device, outlet or breaker feeds it) and in the cooling chain (``cooled_by``).
Cross-references (ids that must exist, cycles, duplicate ids) are checked in
:mod:`inventory.topology` after the shapes here are valid.

Fields are flat on purpose (``host``, ``port``, ``unit`` on the device) so a
generated 50,000-device file stays readable and an error names one field.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from contract import tags as T
from contract.protocols import PROTOCOLS as PROTOCOL_TABLE
from inventory.secrets import SecretRef
from inventory.walk import walk_devices

__all__ = [
    "DEVICE_KINDS", "ROOT_KINDS", "RACK_COOLED_KINDS", "IMPLICIT_LOOP", "PROTOCOLS", "host_problem", "Secret",
    "CredentialSet", "FeedRef", "CoolRef", "CoolingLoop", "MeterSpec",
    "Device", "Rack", "Row", "Hall", "SiteInfo", "Defaults", "Tenant", "Site",
]

DEVICE_KINDS = (
    "utility", "transformer", "generator", "switchgear", "ats", "ups", "pdu", "rpp", "busway",
    "meter", "pv_inverter", "wind_turbine",
    "chiller", "cooling_tower", "cdu", "crah", "crac", "rdhx",
    "gpu_node", "server", "switch", "env_sensor",
)
#: kinds that start a power chain and need no feed
ROOT_KINDS = frozenset({"utility", "generator", "pv_inverter", "wind_turbine"})
#: kinds in a rack that inherit the rack's ``cooled_by`` (the IT load the rack's coolant carries away)
RACK_COOLED_KINDS = frozenset({"gpu_node", "server", "switch"})

#: the inventory's ``protocol:`` values, from the one protocol table (contract/protocols.py)
PROTOCOLS = tuple(PROTOCOL_TABLE)

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: integers are strict: YAML ``true`` is not port 1
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Positive = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=True)


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: a dotted-quad IPv4 address as ``ipaddress`` accepts it (no leading zeros)
_IPV4 = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}\Z")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def host_problem(value: str) -> str | None:
    """Why ``value`` is not a host name or an IP address, or None.

    A host is handed to socket libraries and shown in logs; a URL, a port or a
    shell fragment (``http://evil/;rm -rf``) there is a mistake or an attack,
    refused at load time rather than failing on every poll.
    """
    if _IPV4.match(value):  # the common case, without ipaddress' ≈30 µs per address (50,000 at start)
        return None
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        return (f"host {value[:60]!r} is not a host name or IP address "
                "(write the address alone: no scheme, port, path or spaces)")
    return None


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            f"id {value!r} must start with a letter or digit and use only letters, digits, '.', '_' and '-'"
        )
    return value


class Secret(_Strict):
    """``{env: NAME}`` or ``{file: PATH}``; never the value itself."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_clear_text(cls, value: Any) -> Any:
        if isinstance(value, (str, int, float)):
            raise ValueError("clear-text secret not allowed; write {env: VARIABLE} or {file: /path/to/secret}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "Secret":
        if bool(self.env) == bool(self.file):
            raise ValueError("a secret needs exactly one of env: or file:")
        return self

    def ref(self) -> SecretRef:
        return SecretRef(env=self.env, file=self.file)


class CredentialSet(_Strict):
    """Named credentials, referenced by devices (``credentials: snmp-ro``)."""

    # SNMP
    version: Literal["1", "2c", "3"] | None = None
    community: Secret | None = None
    user: str | None = None
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] | None = None
    auth_key: Secret | None = None
    priv_protocol: Literal["DES", "AES", "AES128", "AES192", "AES256"] | None = None
    priv_key: Secret | None = None
    #: SNMPv3 traps: the engine IDs (hex) this user's traps may come from; empty = any
    #: (the trap receiver localizes keys to whichever engine sent the trap)
    trap_engine_ids: list[str] = Field(default_factory=list)
    # HTTP / Redfish / Modbus gateways
    username: Secret | str | None = None
    password: Secret | None = None
    token: Secret | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("trap_engine_ids")
    @classmethod
    def _engine_ids(cls, value: list[str]) -> list[str]:
        out = []
        for v in value:
            text = str(v).lower().removeprefix("0x")
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raise ValueError(f"trap_engine_ids: {v!r} is not hex (e.g. 80001f8880c0ffee)") from None
            if not 5 <= len(raw) <= 32:
                raise ValueError(f"trap_engine_ids: {v!r} must be 5 to 32 bytes (RFC 3411 SnmpEngineID)")
            out.append(text)
        return out

    @model_validator(mode="after")
    def _v3_complete(self) -> "CredentialSet":
        if self.version == "3":
            if not self.user:
                raise ValueError("SNMPv3 needs user:")
            if self.priv_key and not self.auth_key:
                raise ValueError("SNMPv3 privacy (priv_key) needs authentication (auth_key) too")
        return self

    def secret_refs(self) -> dict[str, SecretRef]:
        out: dict[str, SecretRef] = {}
        for name in ("community", "auth_key", "priv_key", "password", "token"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.ref()
        if isinstance(self.username, Secret):
            out["username"] = self.username.ref()
        return out


class FeedRef(_Strict):
    """One upstream connection: a device, optionally an outlet/breaker/phase on it."""

    device: str
    outlet: int | str | None = None
    breaker: str | None = None
    phase: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        # "pdu-a" or "pdu-a:12" (outlet 12) are accepted as shorthand
        if isinstance(value, str):
            dev, sep, outlet = value.partition(":")
            if sep:
                return {"device": dev, "outlet": int(outlet) if outlet.isdigit() else outlet}
            return {"device": dev}
        return value


#: the loop id a CDU without ``loops:`` has: its one secondary loop
IMPLICIT_LOOP = "1"


class CoolRef(_Strict):
    """One cooling connection: a cooler (chiller, CRAH, CDU), and for a CDU which secondary loop.

    ``"cdu-1:2"`` is loop 2 of cdu-1; a plain ``"cdu-1"`` is its only loop (the
    reference checks refuse it when cdu-1 has several).  The loop id is text: it is
    exactly the ``loop`` tag the CDU's collector writes for that loop.
    """

    device: str
    loop: str | None = None

    @field_validator("loop", mode="before")
    @classmethod
    def _loop_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        # "cdu-1" or "cdu-1:2" (loop 2), as FeedRef's "pdu-a:12"
        if isinstance(value, str):
            dev, sep, loop = value.partition(":")
            return {"device": dev, "loop": loop} if sep else {"device": dev}
        return value

    def __str__(self) -> str:
        return f"{self.device}:{self.loop}" if self.loop is not None else self.device


class CoolingLoop(_Strict):
    """A CDU's secondary loop (technology cooling system): its design point.

    The design figures are what the derived loop health compares against
    (flow below design, supply above design); a loop without them is judged on
    what can be measured alone (pump state, leaks, flow per kW of heat).
    """

    id: str
    name: str | None = None
    rated_kw: Positive | None = None
    design_flow_lpm: Positive | None = None
    design_supply_c: Annotated[float, Field(ge=0, le=80)] | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        # YAML reads `id: 1` as a number; the loop tag is text
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class MeterSpec(_Strict):
    """What an energy meter means for PUE/REF reporting (ISO/IEC 30134-2/-3)."""

    role: Literal["boundary", "it", "renewable", "fuel", "water", "cooling", "other"]
    category: Literal[1, 2, 3] | None = None
    source: Literal["grid", "solar", "wind", "ppa", "diesel", "other"] | None = None
    commissioned: dt.date | None = None
    decommissioned: dt.date | None = None

    @model_validator(mode="after")
    def _category_for_it(self) -> "MeterSpec":
        if self.role == "it" and self.category is None:
            raise ValueError("an IT meter needs category: 1 (UPS output), 2 (PDU output) or 3 (IT equipment input)")
        if self.role != "it" and self.category is not None:
            raise ValueError("category applies to role: it only")
        if self.commissioned and self.decommissioned and self.decommissioned <= self.commissioned:
            raise ValueError("decommissioned must be after commissioned")
        return self


class Device(_Strict):
    id: str
    kind: Literal[DEVICE_KINDS]  # type: ignore[valid-type]
    name: str | None = None
    vendor: str | None = None
    model: str | None = None
    # capacity
    rated_kw: Positive | None = None
    rated_kva: Positive | None = None
    rated_a: Positive | None = None
    # endpoint
    protocol: Literal[PROTOCOLS] = "none"  # type: ignore[valid-type]
    host: str | None = None
    port: Port | None = None
    unit: Annotated[int, Field(ge=0, le=255, strict=True)] | None = None
    serial: str | None = None
    baud: Annotated[int, Field(ge=300, le=921600, strict=True)] | None = None
    profile: str = "auto"
    credentials: str | None = None
    tls_verify: bool = True
    ca_bundle: str | None = None
    interval_s: Annotated[float, Field(ge=0.5, le=3600)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=120)] | None = None
    retries: Annotated[int, Field(ge=0, le=10, strict=True)] | None = None
    # place in the chains
    fed_by: list[FeedRef] = Field(default_factory=list)
    cooled_by: list[CoolRef] = Field(default_factory=list)
    #: a CDU's secondary loops; none declared = one implicit loop "1"
    loops: list[CoolingLoop] = Field(default_factory=list)
    measures: str | None = None
    meter: MeterSpec | None = None
    # GPU nodes
    gpus: Annotated[int, Field(ge=0, le=64, strict=True)] | None = None
    gpu_model: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    _hall: str | None = PrivateAttr(default=None)
    _row: str | None = PrivateAttr(default=None)
    _rack: str | None = PrivateAttr(default=None)
    #: cooling inherited from the rack (set by Site when the device names none itself)
    _rack_cooling: list[CoolRef] | None = PrivateAttr(default=None)

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        problem = host_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _endpoint_complete(self) -> "Device":
        p = self.protocol
        row = PROTOCOL_TABLE[p]
        if row.needs_host and not self.host:
            raise ValueError(f"protocol {p} needs host:")
        if row.needs_serial and not self.serial:
            raise ValueError(f"protocol {p} needs serial: (e.g. /dev/ttyUSB0)")
        if row.unit and self.unit is None:
            raise ValueError(f"protocol {p} needs unit: (Modbus unit id 0..255)")
        if self.meter is not None and self.kind != "meter":
            raise ValueError("meter: applies to kind: meter only")
        return self

    # placement, set by Site after validation.  Read from ``__pydantic_private__`` itself: a
    # private attribute read through ``self._rack`` goes through pydantic's ``__getattr__``
    # (≈4 µs, 25x a slot), and the topology, shard view and rule selectors ask for placement
    # hundreds of thousands of times while a full site starts
    @property
    def hall(self) -> str | None:
        return self.__pydantic_private__["_hall"]

    @property
    def row(self) -> str | None:
        return self.__pydantic_private__["_row"]

    @property
    def rack(self) -> str | None:
        return self.__pydantic_private__["_rack"]

    def effective_port(self) -> int | None:
        return self.port or PROTOCOL_TABLE[self.protocol].default_port

    def feed_ids(self) -> list[str]:
        return [f.device for f in self.fed_by]

    def cooling(self) -> list[CoolRef]:
        """The device's cooling connections: its own ``cooled_by``, else its rack's."""
        inherited = self.__pydantic_private__["_rack_cooling"]
        if self.cooled_by or inherited is None:
            return self.cooled_by
        return inherited

    def cooler_ids(self) -> list[str]:
        """Plain ids of the devices that cool this one (own or inherited from the rack), once each."""
        return list(dict.fromkeys(c.device for c in self.cooling()))

    def loop_ids(self) -> list[str]:
        """A CDU's secondary loop ids, in file order (``["1"]`` when it declares none)."""
        return list(dict.fromkeys(lp.id for lp in self.loops)) or [IMPLICIT_LOOP]


class Rack(_Strict):
    id: str
    name: str | None = None
    rated_kw: Positive | None = None
    redundancy: Literal["N", "N+1", "2N", "2N+1"] = "N"
    #: the rack's cooling (e.g. ``["cdu-1:2"]``): inherited by its IT devices that name none
    cooled_by: list[CoolRef] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class Row(_Strict):
    id: str
    name: str | None = None
    racks: list[Rack] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class Hall(_Strict):
    id: str
    name: str | None = None
    rated_kw: Positive | None = None
    rows: list[Row] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class SiteInfo(_Strict):
    id: str
    name: str | None = None
    timezone: str = "UTC"
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    grid_emission_kgco2e_per_kwh: Annotated[float, Field(ge=0, le=3)] | None = None

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class Defaults(_Strict):
    interval_s: Annotated[float, Field(ge=0.5, le=3600)] = 10.0
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 2.0
    retries: Annotated[int, Field(ge=0, le=10, strict=True)] = 1
    #: protocol -> credential set name used when a device names none
    credentials: dict[str, str] = Field(default_factory=dict)


class Tenant(_Strict):
    """A customer billed for energy: the Kubernetes namespaces (``namespace`` tag of ``gpu``
    samples, from dcgm-exporter's pod labels) whose workloads are theirs.

    Why namespaces and not a label on each pod: dcgm-exporter passes the pod's name and
    namespace, not its labels, and a namespace is what a GPU cloud hands a customer.
    A namespace belongs to at most one tenant (:mod:`inventory.topology` checks it).
    """

    id: str
    name: str | None = None
    namespaces: list[str] = Field(default_factory=list)

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class Site(_Strict):
    site: SiteInfo
    defaults: Defaults = Field(default_factory=Defaults)
    credentials: dict[str, CredentialSet] = Field(default_factory=dict)
    devices: list[Device] = Field(default_factory=list)
    halls: list[Hall] = Field(default_factory=list)
    #: who is billed for which namespaces (energy attribution, ``dcim report energy --by tenant``)
    tenants: list[Tenant] = Field(default_factory=list)

    _by_id: dict[str, Device] = PrivateAttr(default_factory=dict)
    _racks: dict[str, Rack] = PrivateAttr(default_factory=dict)
    #: inventory path of each device, for error messages: id -> ("halls", 0, ...)
    _paths: dict[str, tuple] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        self._index()

    def _index(self) -> None:
        """Give every device its hall/row/rack and build the id index.

        Duplicate ids are reported by :func:`inventory.topology.check_references`; here the
        first one wins so the index stays usable for the other checks.
        """
        by_id: dict[str, Device] = {}
        paths: dict[str, tuple] = {}

        def place(dev: Device, path: tuple, hall=None, row=None, rack=None) -> None:
            priv = dev.__pydantic_private__  # not pydantic's __setattr__: 3 per device on the full site
            priv["_hall"], priv["_row"], priv["_rack"] = hall, row, rack
            if dev.id not in by_id:
                by_id[dev.id] = dev
                paths[dev.id] = path

        for path, dev, hall, row, rack in walk_devices(self):
            place(dev, path, None if hall is None else hall.id, None if row is None else row.id,
                  None if rack is None else rack.id)
        for _, _, rack in self.racks():
            self._racks.setdefault(rack.id, rack)
            if rack.cooled_by:
                for dev in rack.devices:
                    if dev.kind in RACK_COOLED_KINDS:
                        dev.__pydantic_private__["_rack_cooling"] = rack.cooled_by
        self._by_id, self._paths = by_id, paths

    # -- queries every consumer uses -------------------------------------------------
    # the index through ``__pydantic_private__`` itself (see Device.hall): these are asked per edge
    def all_devices(self) -> list[Device]:
        return list(self.__pydantic_private__["_by_id"].values())

    def device(self, device_id: str) -> Device:
        return self.__pydantic_private__["_by_id"][device_id]

    def has_device(self, device_id: str) -> bool:
        return device_id in self.__pydantic_private__["_by_id"]

    def racks(self) -> list[tuple[Hall, Row, Rack]]:
        return [(h, r, k) for h in self.halls for r in h.rows for k in r.racks]

    def rack(self, rack_id: str) -> Rack:
        return self._racks[rack_id]

    def device_path(self, device_id: str) -> tuple:
        return self._paths[device_id]

    def polled_devices(self) -> list[Device]:
        return [d for d in self.__pydantic_private__["_by_id"].values() if d.protocol != "none"]

    def credential_name(self, dev: Device) -> str | None:
        """The credential set ``dev`` uses: its own ``credentials:`` or the protocol's default."""
        family = PROTOCOL_TABLE[dev.protocol].credential_family
        return dev.credentials or (self.defaults.credentials.get(family) if family else None)

    def tenant_of(self, namespace: str) -> str | None:
        """The id of the tenant that owns ``namespace``, or None when no tenant lists it."""
        for t in self.tenants:
            if namespace in t.namespaces:
                return t.id
        return None

    def location_tags(self, dev: Device) -> dict[str, str]:
        """The tags every sample from ``dev`` carries (Foundation conventions)."""
        tags = {T.SITE: self.site.id, T.DEVICE: dev.id, T.KIND: dev.kind}
        for name, value in ((T.HALL, dev.hall), (T.ROW, dev.row), (T.RACK, dev.rack),
                            (T.VENDOR, dev.vendor), (T.MODEL, dev.model)):
            if value:
                tags[name] = value
        return tags
