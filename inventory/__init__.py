"""The site inventory: the single source of truth every other part reads.

``load_site(path)`` returns a validated :class:`~inventory.model.Site`; errors
come back as :class:`~inventory.errors.InventoryError` naming file:line and field.
"""
from inventory.errors import InventoryError, InventoryIssue
from inventory.loader import load_site, load_site_text
from inventory.model import Device, Site

__all__ = ["InventoryError", "InventoryIssue", "load_site", "load_site_text", "Device", "Site"]
