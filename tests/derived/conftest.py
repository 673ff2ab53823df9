from __future__ import annotations

from pathlib import Path

import pytest

from inventory import load_site


@pytest.fixture(scope="module")
def site():
    """tests/derived/site_small.yaml: the small site whose derived numbers are computed by hand."""
    return load_site(Path(__file__).resolve().parent / "site_small.yaml")
