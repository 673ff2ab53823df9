"""Modbus collector: YAML register-map profiles, request coalescing, shared gateways.

See README.md in this folder for the profile format and collector options.
"""
