"""GPU node collectors: DCGM exporter pages, Redfish BMCs and local NVML.

All three produce the same ``gpu`` samples (one per GPU, tag ``gpu`` = index);
Redfish adds ``node`` samples for chassis power, PSUs, temperatures and fans.
See README.md in this package.
"""
