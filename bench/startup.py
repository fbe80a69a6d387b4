"""What importing `neuralode` adds to a command that loads `train.py` for its `APP` (`hpc
status`, `report`, `failed`, `diff`): the reason `train.py` imports it where it trains.

    python bench/startup.py [--repeats 5]

Prints JSON: the median wall seconds of `import train` alone and of `import train, neuralode`,
each started as a fresh interpreter, alternated so that the shared machine's noise hits both."""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASES = {"train_py": "import train", "train_py_and_neuralode": "import train, neuralode"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, code in CASES.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            times[name].append(time.perf_counter() - start)
    medians = {name: round(statistics.median(t), 3) for name, t in times.items()}
    print(json.dumps({"repeats": args.repeats, "median_s": medians, "all_s": times}, indent=1))


if __name__ == "__main__":
    main()
