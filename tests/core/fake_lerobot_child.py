"""A stand-in for the LeRobot child: the real serving loop (lerobot_child.serve) around a fake
policy, so the parent's protocol, crash report and restart are tested without LeRobot.

The fake's joint targets are the observed state plus 0.01 rad per row; the task "crash" ends the
process with exit code 3 in the middle of a request, as a segfault in a policy would."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

CHILD = Path(__file__).resolve().parents[2] / "src" / "vla_core" / "vla_core" / "backends"
sys.path.insert(0, str(CHILD))
import lerobot_child  # noqa: E402 - from the path above, as the real child finds its sibling


class FakePredictor:
    def describe(self) -> dict:
        return {"type": "fake", "chunk_size": 20}

    def predict(self, arrays: dict[str, np.ndarray], task: str, seed: int | None) -> np.ndarray:
        if task == "crash":
            print("fake child: crashing on purpose", flush=True)
            os._exit(3)
        if task == "fail":
            raise ValueError("a policy error inside one request")
        assert arrays["observation.images.front"].shape == (96, 128, 3), arrays["observation.images.front"].shape
        return arrays["observation.state"][None, :].astype(np.float64) + 0.01 * np.arange(20)[:, None]


if __name__ == "__main__":
    print(f"fake child: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
    print(f"fake child: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')} argv {' '.join(sys.argv[1:])}", flush=True)
    lerobot_child.main(load=FakePredictor)
