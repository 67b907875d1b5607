"""The in-process side of bench_lerobot_backend: a LeRobot policy called directly, in the LeRobot
environment's Python, with the code the backend's child runs (`LeRobotPredictor.predict`) and
no socket in between.

    python benchmarks/lerobot_in_process.py POLICY_DIR INPUTS.npz

Prints "ready" once loaded; then for every line "N" on stdin, times N predictions of the inputs
(the arrays the backend sends its child) and prints their wall-clock milliseconds as one JSON
list. Imports only numpy, torch, LeRobot and the child module (vla_core is not installed there).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "vla_core" / "vla_core" / "backends"))
from lerobot_child import LeRobotPredictor  # noqa: E402 - found through the path above


def main(directory: str, inputs: str) -> None:
    predictor = LeRobotPredictor(directory, "cpu")
    with np.load(inputs) as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    print("ready", flush=True)
    for line in sys.stdin:
        samples = []
        for _ in range(int(line)):
            started = time.perf_counter()
            predictor.predict(arrays, "pick up the cube", seed=0)
            samples.append((time.perf_counter() - started) * 1e3)
        print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
