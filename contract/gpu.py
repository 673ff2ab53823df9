"""The ``gpu`` measurement's names that parts other than its collectors read.

The DCGM and NVML collectors write ``clock_event_reasons`` as the driver's bitmask; the derived
cooling-loop job counts thermally throttled GPUs from it and the twin sets its bits, so the bit
values are defined here once (NVML ``nvmlClocksEventReason*``, DCGM ``DCGM_CLOCKS_EVENT_REASON_*``).
"""
from __future__ import annotations

__all__ = ["GPU", "TEMP_C", "CLOCK_EVENT_REASONS", "SW_POWER_CAP", "SW_THERMAL_SLOWDOWN", "HW_THERMAL_SLOWDOWN",
           "THERMAL_SLOWDOWN"]

#: one GPU (DCGM exporter or NVML)
GPU = "gpu"
#: the GPU's core temperature (°C)
TEMP_C = "temp_c"
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
