#!/usr/bin/env bash
# One GPU check, about 15 minutes with start-up: install the `cuda` extra into ./.venv-gpu, then
# time ensembles of 1 to 1,024 reference models on the GPU (bench/ensemble_speed.py) and print
# what a training run costs there, per GPU-hour, beside the same figures on one CPU core.
#
#   bash bench/gpu_check.sh                 # on a GPU node (or a login node with internet first)
#   WHEELS=dir bash bench/gpu_check.sh      # where the node has no internet: pip installs from dir
#
# Prints three JSON objects: the GPU's by_k table, one CPU core's (K = 1, 8) and a summary with
# runs per GPU-hour and runs per core-hour for a 2,000-step run (`--run-steps`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv .venv-gpu
fi
# shellcheck disable=SC1091
. .venv-gpu/bin/activate
if [ -n "${WHEELS:-}" ]; then
    python -m pip install -q --no-index --find-links "$WHEELS" -e ".[cuda]"
else
    python -m pip install -q -e ".[cuda]"
fi
python - <<'EOF'
import jax
print("JAX devices:", jax.devices())
assert jax.devices()[0].platform == "gpu", "no GPU visible to JAX: check CUDA_VISIBLE_DEVICES and the driver"
EOF
out=$(mktemp -d)
timeout 600 python bench/ensemble_speed.py --ks 1 4 16 64 256 1024 --steps 5 --run-steps 2000 | tee "$out/gpu.json"
JAX_PLATFORMS=cpu XLA_FLAGS=--xla_cpu_multi_thread_eigen=false taskset -c 0 \
    timeout 300 python bench/ensemble_speed.py --ks 1 8 --steps 5 --run-steps 2000 | tee "$out/cpu.json"
python - "$out" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
gpu, cpu = (json.loads((out / f"{name}.json").read_text()) for name in ("gpu", "cpu"))
best = max(gpu["by_k"].items(), key=lambda kv: kv[1]["runs_per_hour"])
print(json.dumps({
    "gpu": gpu["device"],
    "best_k_on_gpu": int(best[0]),
    "runs_per_gpu_hour": best[1]["runs_per_hour"],
    "runs_per_core_hour_alone": cpu["by_k"]["1"]["runs_per_hour"],
    "runs_per_core_hour_ensemble_8": cpu["by_k"]["8"]["runs_per_hour"],
    "run_steps": gpu["run_steps"],
}, indent=2))
EOF
