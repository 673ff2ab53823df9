"""Loading the whole 386 MW site: the compiled cache against parsing its YAML.

What a ``dcim run`` pays before its first poll is loading the site file.  The
file of the full site (``dcim inventory generate``: 52,759 devices, ≈12 MB of
YAML) is checked once, when its cache entry is written
(:mod:`inventory.site_cache`); every later start reads the validated data back.

Each measurement is a fresh child process (so its peak memory is its own):

* A: ``load_site`` of the whole site from the cache (``dcim run --derived``, the
  derived job and the rule engine's topology load this);
* B, the peer: PyYAML's C loader (``CSafeLoader``) parsing the same file and no more:
  the least any tool that reads this YAML pays, before checking a single field;
* once each, not alternated: the first load (YAML, every check, the cache entry
  written) and shard 0/8 from the cache (what one of eight collector hosts keeps).

A and B alternate, bracketed by a calibration loop; the medians of CPU seconds
(the child's ``time.process_time`` around the load, imports excluded) and of
peak RSS are printed with their ratios.  Targets (issue "the whole site end to
end"): under 3 s and 250 MB for the whole site.

    python bench/site_load.py             # about 1.5 minutes
    python bench/site_load.py --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import calibrate, median, stable  # noqa: E402

#: run in the child: imports first (not counted), then the load, then what it cost
_CHILD = r"""
import json, sys, time
what, path = sys.argv[1], sys.argv[2]

def hwm_mib():
    # the peak of this process's own memory (VmHWM starts afresh at exec, unlike ru_maxrss,
    # which a child inherits from the bench process that forked it)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

import yaml
from inventory.loader import load_site
from collectors.sharding import in_shard
base = hwm_mib()
t0 = time.process_time()
if what == "yaml":
    data = yaml.load(open(path, encoding="utf-8").read(), Loader=yaml.CSafeLoader)
    devices = sum(len(r.get("devices", [])) for h in data["halls"] for r in h.get("rows", []))
elif what == "shard":
    site = load_site(path, local=in_shard((0, 8)))
    devices = len(site.all_devices())
else:
    site = load_site(path)
    devices = len(site.all_devices())
cpu = time.process_time() - t0
print(json.dumps({"cpu_s": cpu, "peak_mib": hwm_mib(), "before_mib": base, "devices": devices}))
"""


def child(what: str, path: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, what, str(path)], env=env, capture_output=True, text=True,
                         timeout=300, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise SystemExit(f"{what} load failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="A/B pairs (each pair ≈10 s)")
    args = ap.parse_args()
    from inventory.generate import FULL_SITE, dump_site, generate_site

    with tempfile.TemporaryDirectory(prefix="dcim-site-load-") as tmp:
        path = Path(tmp) / "full-site.yaml"
        path.write_text(dump_site(generate_site(FULL_SITE)), encoding="utf-8")
        size = path.stat().st_size
        env = {**os.environ, "DCIM_SITE_CACHE": str(Path(tmp) / "cache"),
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        first = child("site", path, env)  # no entry yet: YAML, every check, the entry written
        shard = child("shard", path, env)
        a_runs: list[dict] = []
        b_runs: list[dict] = []
        skipped = 0
        for _ in range(max(1, min(args.rounds, 10))):
            before = calibrate()
            a, b = child("site", path, env), child("yaml", path, env)
            after = calibrate()
            if not stable(before, after):
                skipped += 1
                print(f"round dropped: calibration {before:.3f} -> {after:.3f} s", flush=True)
                continue
            a_runs.append(a)
            b_runs.append(b)
        if not a_runs:
            print("every round was dropped: the machine's speed drifted too much; run again")
            return 1
    a_cpu, b_cpu = median([r["cpu_s"] for r in a_runs]), median([r["cpu_s"] for r in b_runs])
    a_mib, b_mib = median([r["peak_mib"] for r in a_runs]), median([r["peak_mib"] for r in b_runs])
    mb = 1.048576  # MiB -> MB
    print(f"full site: {size / 1e6:.1f} MB of YAML, {a_runs[-1]['devices']:,} devices; {len(a_runs)} rounds kept, "
          f"{skipped} dropped")
    print(f"first load (YAML + every check + cache entry)  {first['cpu_s']:6.2f} s CPU  {first['peak_mib']:5.0f} MiB peak")
    print(f"A whole site from the cache                     {a_cpu:6.2f} s CPU  {a_mib:5.0f} MiB peak"
          f"  ({a_mib * mb:.0f} MB; target 3 s / 250 MB: {'met' if a_cpu < 3 and a_mib * mb < 250 else 'NOT MET'})")
    print(f"B YAML parse alone (CSafeLoader, the peer)      {b_cpu:6.2f} s CPU  {b_mib:5.0f} MiB peak")
    print(f"shard 0/8 from the cache ({shard['devices']:,} devices kept)   {shard['cpu_s']:6.2f} s CPU  "
          f"{shard['peak_mib']:5.0f} MiB peak")
    print(f"ratio A / B: CPU {a_cpu / b_cpu:.2f}, peak memory {a_mib / b_mib:.2f}"
          f" (interpreter and imports before the load: {a_runs[-1]['before_mib']:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
