"""The compiled site cache: a big file that passed every check loads without parsing its
YAML again, and nothing else ever comes from the cache."""
from __future__ import annotations

import dataclasses
import os

import pytest

import inventory.loader as loader
from inventory import InventoryError, load_site
from inventory.generate import FULL_SITE, dump_site, generate_site
from inventory.site_cache import MIN_BYTES, cache_key


@pytest.fixture(scope="module")
def big_text() -> str:
    text = dump_site(generate_site(dataclasses.replace(FULL_SITE, halls=2, address_plan="loopback")))
    assert len(text) >= MIN_BYTES
    return text


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("DCIM_SITE_CACHE", str(d))
    return d


def _no_yaml(monkeypatch):
    def refuse(text, filename):
        raise AssertionError("the YAML was parsed although the cache holds this file")
    monkeypatch.setattr(loader, "parse_yaml", refuse)


def test_second_load_comes_from_the_cache_and_is_the_same_site(tmp_path, cache, big_text, monkeypatch):
    f = tmp_path / "site.yaml"
    f.write_text(big_text)
    first = load_site(f)
    entry = cache / f"{cache_key(big_text)}.marshal"
    assert entry.exists() and (entry.stat().st_mode & 0o777) == 0o600
    assert (cache.stat().st_mode & 0o777) == 0o700
    _no_yaml(monkeypatch)
    second = load_site(f)
    assert second.model_dump() == first.model_dump()
    dev = second.device("h02-r05-k20-n18")
    assert (dev.hall, dev.row, dev.rack) == ("h02", "h02-r05", "h02-r05-k20")
    assert len(second.polled_devices()) == len(first.polled_devices())


def test_a_changed_file_is_checked_again_with_its_line(tmp_path, cache, big_text):
    f = tmp_path / "site.yaml"
    f.write_text(big_text)
    load_site(f)
    lines = big_text.splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.strip() == "- id: h01-r01-k01-n02") + 1
    assert lines[n].strip() == "kind: gpu_node"
    lines[n] = lines[n].replace("kind: gpu_node", "kind: gpu_nodee")
    f.write_text("".join(lines))
    with pytest.raises(InventoryError) as err:
        load_site(f)
    assert str(err.value).startswith(f"{f}:{n + 1}: ")


def test_an_entry_others_can_write_is_ignored(tmp_path, cache, big_text, monkeypatch):
    f = tmp_path / "site.yaml"
    f.write_text(big_text)
    load_site(f)
    entry = cache / f"{cache_key(big_text)}.marshal"
    os.chmod(entry, 0o666)
    _no_yaml(monkeypatch)
    with pytest.raises(AssertionError, match="YAML was parsed"):
        load_site(f)


def test_off_writes_nothing(tmp_path, monkeypatch, big_text):
    monkeypatch.setenv("DCIM_SITE_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    f = tmp_path / "site.yaml"
    f.write_text(big_text)
    load_site(f)
    assert not (tmp_path / "xdg").exists()
