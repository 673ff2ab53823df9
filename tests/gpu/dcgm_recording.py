"""The real DCGM exporter page the GPU tests read (an 8×H100 node), and its values read without our parser."""
from __future__ import annotations

import re

from testkit.testdata import shared_testdata

PAGE = shared_testdata() / "gpu" / "nvidia-aicr_h100x8_dcgm-exporter_sample.prom"
BASE = {"site": "tetouan", "rack": "h1-r01-k01", "device": "h1-r01-k01-n1", "model": "SYS-821GE-TNHR"}


def page_values(metric: str) -> dict[str, float]:
    """gpu index -> value of ``metric``, read from the recording with a plain regex, not our parser."""
    out = {}
    for line in PAGE.read_text().splitlines():
        if line.startswith(metric + "{"):
            out[re.search(r'[{,]gpu="(\d+)"', line).group(1)] = float(line.rsplit(" ", 1)[1])
    return out
