"""What serving a LeRobot policy through the LeRobot backend costs: chunk latency of a tiny ACT
(scripts/make_tiny_lerobot_act.py: one 64x64 camera, 6 joints, 20-row chunks) through
`LeRobotBackend.predict_chunk` (the node's process: resize to the policy's image size, send over
the Unix socket, the child in the LeRobot environment predicts, the answer back, re-expressed in
the SO-101's action space) against the same policy called in-process in the LeRobot environment
(`LeRobotPredictor.predict`, the child's own code, no socket: benchmarks/lerobot_in_process.py).

The two run in alternating rounds so a shared machine's drifting load falls on both; the overhead
rows are per-round differences and ratios of the round medians. Skipped, with the reason, where
the LeRobot environment is absent (scripts/lerobot_check.sh builds it). Both LeRobot processes
run with one torch thread (the backend hands its process's torch threads to the child, as the
node's torch_threads): with two on this shared 2-core machine the same ACT took 1.1 s a chunk
instead of 35 ms (OpenMP's spin-wait), which would measure the load."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from statistics import median

import numpy as np
import torch

from benchmarks.measure import Measurement, time_call
from vla_core.backends.lerobot_backend import LeRobotBackend, default_lerobot_python
from vla_core.embodiment import load_embodiment
from vla_core.images import resize_rgb
from vla_core.model.batching import Observation

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = "pick up the cube"


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch_threads 1, as the node's parameter sets it: the backend hands it to its child."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run(quick: bool) -> list[Measurement]:
    python = default_lerobot_python()
    if not Path(python).exists():
        print(f"  skipped: no LeRobot environment at {python} (scripts/lerobot_check.sh builds it)")
        return []
    spec = load_embodiment("so101")
    rng = np.random.default_rng(0)
    state = rng.uniform(-0.5, 0.5, spec.state_dim)
    observation = Observation(main_image=rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), state=state,
                              wrist_images={"wrist": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)})
    rounds, per_round = (3, 5) if quick else (10, 20)
    with tempfile.TemporaryDirectory() as scratch, one_torch_thread():
        policy = Path(scratch) / "act"
        subprocess.run([python, str(ROOT / "scripts" / "make_tiny_lerobot_act.py"), str(policy)], check=True,
                       timeout=600)
        # the arrays the backend sends its child for this observation: the front camera at the
        # policy's 64x64 (resized once here, as the parent does per request) and the state
        inputs = Path(scratch) / "inputs.npz"
        np.savez(inputs, **{"observation.images.front": resize_rgb(observation.main_image, 64, 64),
                            "observation.state": state.astype(np.float32)})
        in_process = subprocess.Popen([python, str(ROOT / "benchmarks" / "lerobot_in_process.py"), str(policy),
                                       str(inputs)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env={**os.environ, "OMP_NUM_THREADS": "1"})
        backend = LeRobotBackend(str(policy), spec, python=python)
        try:
            for line in in_process.stdout:  # LeRobot says what it loads on stdout before "ready"
                if line.strip() == "ready":
                    break
            else:
                raise RuntimeError("the in-process side exited before loading the policy")

            def measure_in_process(count: int) -> list[float]:
                in_process.stdin.write(f"{count}\n")
                in_process.stdin.flush()
                return json.loads(in_process.stdout.readline())

            measure_in_process(3)  # warm-up
            wire: list[float] = []

            def through_backend() -> None:
                wire.append(backend.predict_chunk(observation, INSTRUCTION, seed=0).latency_seconds * 1e3)

            backend_ms: list[float] = []
            direct_ms: list[float] = []
            overhead, ratio = [], []
            for index in range(rounds):
                direct = measure_in_process(per_round)
                served = time_call(through_backend, per_round, warmup=3 if index == 0 else 0)
                direct_ms += direct
                backend_ms += served
                overhead.append(median(served) - median(direct))
                ratio.append(median(served) / median(direct))
        finally:
            backend.close()
            in_process.stdin.close()
            in_process.wait(timeout=30)
    wire = wire[-len(backend_ms):]  # the timed calls only
    notes = {"policy": "tiny ACT (dim 32, 1+1 layers, 64x64 camera, 20 rows)", "rounds": rounds,
             "per_round": per_round, "torch_threads": 1,
             "load_avg_1min": round(os.getloadavg()[0], 1)}
    return [
        Measurement.from_samples("chunk via LeRobotBackend (child process)", "ms", backend_ms, **notes),
        Measurement.from_samples("  of which the socket round trip (child predicts inside)", "ms", wire),
        Measurement.from_samples("chunk in-process in the LeRobot environment", "ms", direct_ms),
        Measurement.from_samples("backend overhead per chunk (round medians)", "ms", overhead),
        Measurement.from_samples("backend / in-process (round medians)", "x", ratio),
    ]
