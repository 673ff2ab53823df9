#!/usr/bin/env bash
# The demo: a simulated Tétouan site polled end to end (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dcim demo "$@"
