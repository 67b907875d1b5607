"""`vla train` under torchrun: two CPU processes (gloo) train like one process on the same global
batch, and a checkpoint of the two-process run resumes in one process.

Equality is up to float summation order: DDP averages the two ranks' gradients in an
all-reduce, one process accumulates the same two micro-batches one after the other, so the
weights agree to about 1e-6 (the test allows 1e-5 absolute + 1e-4 relative), not bit for bit.
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

from vla_core.training.config import TrainConfig
from vla_core.training.loop import step_directory, train

from .training_episodes import synthetic_episode, tiny_policy_settings

WORKER = Path(__file__).with_name("distributed_training_worker.py")


def episodes() -> list[list]:
    return [[synthetic_episode("so101", 24, seed) for seed in range(3)]]


def config_for(output) -> TrainConfig:
    return TrainConfig(datasets=[{"path": "so101"}], policy=tiny_policy_settings(), steps=4, batch_size=4,
                       micro_batch_size=2, warmup_steps=1, save_every=2, val_every=4, val_chunks=4, log_every=1,
                       output_dir=str(output))


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "training_state" / "model.safetensors"))


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")
    return max(float((a[n] - b[n]).abs().max()) for n in a if a[n].is_floating_point())


@pytest.mark.slow
def test_two_processes_train_like_one_and_resume_in_one(tmp_path) -> None:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(WORKER.parents[2]), os.environ.get("PYTHONPATH", "")])}
    environment.pop("WORLD_SIZE", None)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(WORKER), str(tmp_path / "two")], env=environment, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((step_directory(tmp_path / "two", 4) / "training_state" / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 4

    data = episodes()
    train(config_for(tmp_path / "one"), data, device="cpu")
    difference = assert_close(weights(step_directory(tmp_path / "two", 4)), weights(step_directory(tmp_path / "one", 4)))
    assert difference < 1e-5
    assert not torch.equal(weights(step_directory(tmp_path / "two", 2))["expert.head.weight"],
                           weights(step_directory(tmp_path / "two", 4))["expert.head.weight"])

    # the two-process checkpoint at step 2 continues in one process to the same weights
    train(config_for(tmp_path / "resumed"), data, resume=step_directory(tmp_path / "two", 2), device="cpu")
    assert_close(weights(step_directory(tmp_path / "resumed", 4)), weights(step_directory(tmp_path / "one", 4)))
