"""The ``gpu`` measurement's names that parts other than its collectors read.

The DCGM and NVML collectors write ``clock_event_reasons`` as the driver's bitmask; the derived
cooling-loop job counts thermally throttled GPUs from it and the twin sets its bits, so the bit
values are defined here once (NVML ``nvmlClocksEventReason*``, DCGM ``DCGM_CLOCKS_EVENT_REASON_*``).
"""
from __future__ import annotations

__all__ = ["GPU", "TEMP_C", "POWER_W", "CLOCK_EVENT_REASONS", "SW_POWER_CAP", "SW_THERMAL_SLOWDOWN",
           "HW_THERMAL_SLOWDOWN", "THERMAL_SLOWDOWN", "is_thermal_throttle",
           "GPU_NODE", "GPUS", "TEMP_MAX_C", "GPUS_THROTTLED"]

#: one GPU (DCGM exporter or NVML)
GPU = "gpu"
#: the GPU's core temperature (°C)
TEMP_C = "temp_c"
#: the GPU's power draw (W)
POWER_W = "power_w"
#: the driver's clock-event reasons bitmask (why clocks are below their target)
CLOCK_EVENT_REASONS = "clock_event_reasons"
#: NVML ``nvmlClocksEventReasonSwPowerCap``: the power limit holds clocks down
SW_POWER_CAP = 0x4
#: NVML ``nvmlClocksEventReasonSwThermalSlowdown`` (DCGM ``DCGM_CLOCKS_EVENT_REASON_SW_THERMAL``)
SW_THERMAL_SLOWDOWN = 0x20
#: NVML ``nvmlClocksEventReasonHwThermalSlowdown`` (DCGM ``DCGM_CLOCKS_EVENT_REASON_HW_THERMAL``)
HW_THERMAL_SLOWDOWN = 0x40
#: either thermal slowdown bit: the GPU is slowed for heat
THERMAL_SLOWDOWN = SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN


def is_thermal_throttle(reasons: float | int | None) -> bool:
    """True when a ``clock_event_reasons`` bitmask holds a thermal slowdown bit."""
    if reasons is None or isinstance(reasons, bool):
        return False
    return bool(int(reasons) & THERMAL_SLOWDOWN)


#: one GPU node's GPUs as one poll read them, written beside the per-GPU samples by every poll that
#: yields ``gpu`` samples (collectors/gpu/node_summary.py): the site-level derived job reads these
#: 43,200 series of the full site instead of its 345,600 per-GPU ones (derived/from_influx.py).
#: Fields: ``power_w`` (the sum of the GPUs' ``power_w``), ``gpus`` (GPUs with a temperature or
#: clock-event reading), ``temp_max_c`` (the hottest ``temp_c``), ``clock_event_reasons`` (the OR
#: of the GPUs' bitmasks), ``gpus_throttled`` (GPUs with a thermal slowdown bit)
GPU_NODE = "gpu_node"
GPUS = "gpus"
TEMP_MAX_C = "temp_max_c"
GPUS_THROTTLED = "gpus_throttled"
