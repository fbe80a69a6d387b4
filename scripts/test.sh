#!/usr/bin/env bash
# Set up ./.venv with the test extras if needed, start the local Slurm cluster (as root, where
# apt-get can install it), and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
. "$(dirname "$0")/venv.sh" dev "[dev]"
if [ "$(id -u)" = 0 ]; then
    MAX_ARRAY_SIZE=4 bash hpc/testing/local_cluster.sh start  # small, so grid splitting is tested
else
    echo "Not root: the Slurm tests will be skipped (they need hpc/testing/local_cluster.sh)."
fi
python -m pytest "$@"
