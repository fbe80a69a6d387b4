#!/usr/bin/env bash
# Set up ./.venv if needed and run `python train.py` with any overrides given.
set -euo pipefail
. "$(dirname "$0")/venv.sh" run
exec python train.py "$@"
