"""`vla train` unchanged under torchrun: two CPU processes (gloo) train like one process on the same
global batch, and a checkpoint of the two-process run resumes in one process.

Equality is up to float summation order: DDP averages the two ranks' gradients in an
all-reduce, one process accumulates the same two micro-batches one after the other, so the
weights agree to about 1e-7 (the test allows 1e-5 absolute + 1e-4 relative), not bit for bit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from vla_core.cli import main as vla
from vla_core.data.lerobot_v3 import DatasetWriter
from vla_core.embodiment import load_embodiment
from vla_core.training.loop import step_directory

from .training_episodes import synthetic_episode, tiny_policy_settings


def settings(dataset: Path, output: Path) -> list[str]:
    values = {"datasets": f"[{dataset}]", "policy": json.dumps(tiny_policy_settings()), "steps": 4,
              "batch_size": 4, "micro_batch_size": 2, "warmup_steps": 1, "save_every": 2, "val_every": 4,
              "val_chunks": 4, "log_every": 1, "num_workers": 0, "output_dir": output}
    return [item for key, value in values.items() for item in ("--set", f"{key}={value}")]


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "training_state" / "model.safetensors"))


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        torch.testing.assert_close(tensor, b[name], atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.slow
def test_two_processes_train_like_one_and_resume_in_one(tmp_path) -> None:
    dataset = tmp_path / "pick"
    with DatasetWriter(dataset, load_embodiment("so101"), 30.0) as writer:
        for seed in range(3):
            writer.add(synthetic_episode("so101", 24, seed))
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("WORLD_SIZE", None)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "vla_core.cli", "train", "--config", "config/train/default.yaml",
                             "--device", "cpu", *settings(dataset, tmp_path / "two")],
                            env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((step_directory(tmp_path / "two", 4) / "training_state" / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 4
    assert result.stdout.count("final checkpoint:") == 2  # both ranks finished; rank 0 alone wrote

    assert vla(["train", "--config", "config/train/default.yaml", "--device", "cpu",
                *settings(dataset, tmp_path / "one")]) == 0
    two, one = weights(step_directory(tmp_path / "two", 4)), weights(step_directory(tmp_path / "one", 4))
    assert_close(two, one)
    assert not torch.equal(weights(step_directory(tmp_path / "two", 2))["expert.head.weight"], two["expert.head.weight"])

    # the two-process checkpoint at step 2 continues in one process to the same weights
    assert vla(["train", "--resume", str(step_directory(tmp_path / "two", 2)), "--device", "cpu",
                "--set", f"output_dir={tmp_path / 'resumed'}"]) == 0
    assert_close(weights(step_directory(tmp_path / "resumed", 4)), one)
