#!/usr/bin/env bash
# Set up ./.venv with the test extras if needed and run the whole test suite.
set -euo pipefail
. "$(dirname "$0")/venv.sh" dev "[dev]"
python -m pytest "$@"
