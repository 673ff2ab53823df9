"""The collector service's own configuration (``dcim run --config FILE``).

It says where the inventory is and where samples go; the devices themselves
come from the inventory alone.  Same error style as the inventory:
``file:line: field: message``.  Relative paths are relative to the config file.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from inventory.loader import load_model, read_text
from inventory.model import Secret
from sinks.influx_writer import InfluxConfig
from storage.tiers import StorageConfig

__all__ = ["RunConfig", "AlertmanagerSection", "load_run_config", "parse_shard", "open_service", "own_spool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InfluxSection(_Strict):
    url: str = "http://127.0.0.1:8086"
    database: str = "dcim"
    retention_policy: str = ""
    org: str = ""
    bucket: str | None = None
    token: Secret | None = None
    api: Literal["auto", "v1", "v2"] = "auto"
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    gzip_level: Annotated[int, Field(ge=0, le=9)] = 1
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    spool_dir: str | None = None
    spool_max_mb: Annotated[int, Field(ge=1, le=1 << 20)] = 1024  # at most 1 TiB
    spool_policy: Literal["drop_oldest", "drop_newest"] = "drop_oldest"
    spill_after_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    max_backoff_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    stats_interval_s: Annotated[float, Field(ge=1, le=3600)] = 10.0

    def to_config(self, base: Path) -> InfluxConfig:
        spool = str((base / self.spool_dir).resolve()) if self.spool_dir else None
        return InfluxConfig(
            url=self.url, database=self.database, retention_policy=self.retention_policy, org=self.org,
            bucket=self.bucket, token=self.token.ref().resolve() if self.token else None, api=self.api,
            batch_size=self.batch_size, flush_interval_s=self.flush_interval_s, gzip_level=self.gzip_level,
            timeout_s=self.timeout_s, spool_dir=spool, spool_max_bytes=self.spool_max_mb << 20,
            spool_policy=self.spool_policy, spill_after_s=self.spill_after_s, max_backoff_s=self.max_backoff_s,
            stats_interval_s=self.stats_interval_s,
        )


def own_spool(influx: InfluxConfig, part: str | None) -> InfluxConfig:
    """``influx`` with this process's own spool: ``spool_dir/<part>`` (``shard-<i>`` for ``dcim run
    --shard i/N`` with N > 1, ``derived`` for ``dcim derived run``), so processes started from one
    config on one host never share a spool directory; batches left in ``spool_dir`` itself (a
    version before this, or a single-shard run) are taken over when no process holds it.
    ``part`` None: ``spool_dir`` itself."""
    if part is None or not influx.spool_dir:
        return influx
    return replace(influx, spool_dir=str(Path(influx.spool_dir) / part), spool_adopt_dir=influx.spool_dir)


class TrapsSection(_Strict):
    """``traps:``: the SNMP trap/inform receiver (off unless ``listen`` is set)."""

    listen: str
    rate_per_s: Annotated[float, Field(gt=0, le=10_000)] = 5.0
    burst: Annotated[int, Field(ge=1, le=100_000)] = 20
    communities: list[Secret] = Field(default_factory=list)
    engine_id: str | None = None
    poll_gap_s: Annotated[float, Field(ge=0, le=3600)] = 1.0
    stats_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        from collectors.snmp.traps.listener import parse_listen

        parse_listen(value)
        return value

    @field_validator("engine_id")
    @classmethod
    def _engine_id(cls, value: str | None) -> str | None:
        if value is None:
            return value
        text = value.lower().removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("engine_id is hex, e.g. 80001f8804646369 (5 to 32 bytes)") from None
        if not 5 <= len(raw) <= 32:
            raise ValueError("engine_id must be 5 to 32 bytes (RFC 3411 SnmpEngineID)")
        return text

    def to_settings(self):
        from collectors.snmp.traps.listener import TrapSettings, parse_listen

        host, port = parse_listen(self.listen)
        return TrapSettings(host=host, port=port, rate_per_s=self.rate_per_s, burst=self.burst,
                            communities=[c.ref().resolve() for c in self.communities],
                            engine_id=bytes.fromhex(self.engine_id) if self.engine_id else None,
                            poll_gap_s=self.poll_gap_s, stats_interval_s=self.stats_interval_s)


class AlertmanagerSection(_Strict):
    """Where ``dcim run --alerts`` sends alerts (every URL: the peers of one cluster).
    Credentials and TLS come from ``DCIM_ALERTMANAGER_*`` (alerts/README.md)."""

    urls: list[str] = Field(default_factory=list)
    resend_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    grafana_url: str = ""  # base URL for the dashboard link on each alert

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for u in value:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"{u!r}: expected http(s)://HOST:PORT")
        return value


class RunConfig(_Strict):
    site: str
    shard: str = "0/1"
    influxdb: InfluxSection = Field(default_factory=InfluxSection)
    concurrency: dict[str, Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=dict)
    alertmanager: AlertmanagerSection = Field(default_factory=AlertmanagerSection)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    storage: StorageConfig = Field(default_factory=StorageConfig)
    traps: TrapsSection | None = None
    _base: Path = Path(".")

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        parse_shard(value)
        return value

    def site_path(self) -> Path:
        return (self._base / self.site).resolve()


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' -> (i, N) with 0 <= i < N."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"shard must look like i/N (e.g. 0/4); got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {text!r}: need N >= 1 and 0 <= i < N")
    return i, n


def load_run_config(path: str | Path) -> RunConfig:
    cfg, _ = load_model(read_text(path), str(path), RunConfig)
    cfg._base = Path(path).parent
    return cfg


def open_service(path: str | Path, prog: str, *, with_site: bool = True, shard_view: str | None = None):
    """(config, site, InfluxConfig) for a command that runs against a service config, or the exit code.

    The one place ``dcim run``, ``dcim derived run``, ``dcim agent`` and ``dcim
    storage`` turn a bad config or site file into ``file:line`` lines (exit 1) or a
    one-line reason naming the variable or file of an unreadable secret (exit 2),
    never a traceback.  ``with_site=False``: the site is not loaded (``site`` is None).

    ``shard_view``: the shard (``i/N``, empty for the config's own) whose share of the site is
    kept: with N > 1 only its devices and those upstream of them (:mod:`inventory.subset`),
    so a shard does not hold the whole site.
    """
    import sys

    from collectors.sharding import in_shard
    from inventory import InventoryError, load_site
    from inventory.secrets import SecretError

    try:
        cfg = load_run_config(path)
        local = in_shard(parse_shard(shard_view or cfg.shard)) if shard_view is not None else None
        site = load_site(cfg.site_path(), local=local) if with_site else None
        influx = cfg.influxdb.to_config(Path(path).parent)
    except InventoryError as exc:
        exc.print_issues()
        return 1
    except (SecretError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return cfg, site, influx
