"""Hostile input cost: every case of tests/hostile/cases through the real CLI, against a good file.

For each case (alias bombs, a 50 MB site, 5,000-digit ports, rule-test bombs, …)
the CLI runs in a subprocess; we read its wall time and peak RSS (``wait4``'s
``ru_maxrss``).  Peer, in the same run and alternated A B A B: ``dcim
inventory check`` of the shipped example site (a good 66-device file), so the
ratio says whether refusing an attack costs more than accepting a small good
file (it should not: both are dominated by the interpreter's start-up).  The
machine is shared; absolute times drift, the ratios are what to compare.

    python bench/hostile_inputs.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import calibrate, median, stable  # noqa: E402

CASES = ROOT / "tests" / "hostile" / "cases"
GOOD = ["inventory", "check", "--no-secrets", str(ROOT / "inventory" / "examples" / "tetouan.yaml")]


def _run(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall s, peak RSS MiB, exit code) of one ``dcim`` run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dcim.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    try:
        cases = []
        for case in sorted(p for p in CASES.iterdir() if p.is_dir()):
            dest = work / case.name
            shutil.copytree(case, dest, ignore=shutil.ignore_patterns("expected.err", "cmd", "make.py"))
            if (case / "make.py").exists():
                subprocess.run([sys.executable, str(case / "make.py")], cwd=dest, check=True, timeout=120)
            cases.append((case.name, shlex.split((case / "cmd").read_text()), dest))
        print(f"{'case':32s} {'wall s':>8s} {'good s':>8s} {'ratio':>6s} {'RSS MiB':>8s} {'good MiB':>8s} rc")
        worst = 0.0
        for name, args, cwd in cases:
            bad_t, good_t, bad_m, good_m, rcs = [], [], [], [], set()
            for _ in range(a.rounds):
                c0 = calibrate(300_000)
                w, m, rc = _run(args, cwd)
                gw, gm, _ = _run(GOOD, ROOT)
                if not stable(c0, calibrate(300_000), 0.5):
                    continue  # the machine's speed moved during the pair: drop it
                bad_t.append(w), bad_m.append(m), good_t.append(gw), good_m.append(gm), rcs.add(rc)
            if not bad_t:
                print(f"{name:32s} (every round discarded: machine unstable)")
                continue
            ratio = median(bad_t) / median(good_t)
            worst = max(worst, ratio)
            print(f"{name:32s} {median(bad_t):8.2f} {median(good_t):8.2f} {ratio:6.2f} {median(bad_m):8.0f} "
                  f"{median(good_m):8.0f} {','.join(map(str, sorted(rcs)))}")
        print(f"worst ratio (hostile case / good example site): {worst:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
