# Sourced by the set-up scripts: create or reuse ./.venv and install the project into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${1:-run}
if [ ! -e "$stamp" ]; then
    python -m pip install -q --upgrade pip
    # setuptools' "Editable installation ... be careful with folders" banner is a warning of its
    # own: silenced by its message; pip's errors, and every other warning, still show
    PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q -e ".${2:-}"
    touch "$stamp"
fi
