#!/usr/bin/env bash
# The whole test suite: set-up, then pytest against real servers started by fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
