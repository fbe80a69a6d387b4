#!/usr/bin/env bash
# Set up ./.venv with the test extras if needed, start the local Slurm cluster and install headless
# Chromium (as root, where apt-get can install them), build the documentation site strictly, and
# run the whole test suite. Extra arguments go to pytest.
#   bash scripts/test.sh            # the whole suite: CI's command
#   bash scripts/test.sh --quick    # the quick tier: unit tests and doctests, no training, no cluster (< 2 min)
set -euo pipefail
. "$(dirname "$0")/venv.sh" dev "[dev]"
if [ "${1:-}" = "--quick" ]; then
    shift
    exec python -m pytest -n "${TEST_WORKERS:-2}" -m "not slow and not slurm and not browser" "$@"
fi
if [ "$(id -u)" = 0 ]; then
    MAX_ARRAY_SIZE=4 bash scripts/local_cluster.sh start  # small, so grid splitting is tested
    bash scripts/install_browser.sh || echo "Chromium did not install: the browser test will say why."
else
    echo "Not root: the Slurm and browser tests will be skipped (they need scripts/local_cluster.sh"
    echo "and scripts/install_browser.sh)."
fi
# the pinned linter and formatter (pyproject.toml: [tool.ruff]): each fails the run before any test
# (one line each: under `set -e` a failure inside an `a && b` list does not stop the script)
ruff check .
ruff format --check .
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet -d "$(mktemp -d)"  # a broken link or a missing page fails the run
# two workers: the cluster's tests, in one of them one after another, wait on Slurm much of the time
python -m pytest -n "${TEST_WORKERS:-2}" --dist loadgroup "$@"
