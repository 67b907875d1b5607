"""Training throughput of the default policy on this machine, the data pipeline alone, and the cost
of DDP (two gloo processes against one) per optimizer step.

Data: synthetic SO-101 episodes with 224x224 front and wrist frames (the profile's camera size),
so the pipeline does the real work: forward kinematics already cached per episode, one
`encode_chunk`, two image resizes, state and action normalisation, collation, augmentation.
DDP: both runs pin one thread per process (OMP_NUM_THREADS=1) and give each process the same
micro-batch of 4, so the difference per step is the gradient all-reduce plus the two processes
competing for this machine's two cores and memory bandwidth.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from vla_core.training.augment import augment_batch

from benchmarks.measure import Measurement

ROOT = Path(__file__).resolve().parents[1]
MICRO_BATCH = 8


def _trainer(output: str, micro_batch: int, batch: int, steps: int):
    from vla_core.training.config import TrainConfig
    from vla_core.training.loop import Trainer

    from tests.core.training_episodes import synthetic_episode

    episodes = [[synthetic_episode("so101", 60, seed, image=224) for seed in range(4)]]
    config = TrainConfig(datasets=[{"path": "synthetic so101"}], steps=steps, batch_size=batch,
                         micro_batch_size=micro_batch, warmup_steps=1, output_dir=output)
    return Trainer(config, episodes, device="cpu")


def _time_steps(trainer, warmup: int) -> list[float]:
    """Seconds per optimizer step, after `warmup` untimed steps."""
    trainer.policy.train()
    batches = trainer.micro_batches()
    seconds = []
    for step in range(trainer.config.steps):
        start = time.perf_counter()
        trainer.train_step(step, batches)
        if step >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def _worker(result_path: str, steps: int) -> None:
    """One rank of the DDP measurement (under torchrun) or the single-process reference: seconds
    per step, and with two ranks the seconds of one gloo all-reduce of every trainable gradient."""
    import torch.distributed as dist
    from vla_core.training.distributed import shutdown_distributed

    world = int(os.environ.get("WORLD_SIZE", "1"))
    with tempfile.TemporaryDirectory() as output:
        trainer = _trainer(output, 4, 4 * world, steps)
        seconds = _time_steps(trainer, warmup=3)
    reduce = []
    if world > 1:
        gradients = torch.zeros(sum(p.numel() for p in trainer.policy.parameters() if p.requires_grad))
        for _ in range(12):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(gradients)
            reduce.append(time.perf_counter() - start)
    if trainer.context.is_main:
        Path(result_path).write_text(json.dumps({"steps": seconds, "all_reduce": reduce[2:]}))
    shutdown_distributed()


def _ddp_step_seconds(processes: int, steps: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as scratch:
        result = Path(scratch) / "seconds.json"
        environment = {**os.environ, "OMP_NUM_THREADS": "1",
                       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        environment.pop("WORLD_SIZE", None)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(processes), __file__, "--worker", str(result), str(steps)]
        done = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=ROOT, timeout=1200,
                              check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        return json.loads(result.read_text())


def run(quick: bool) -> list[Measurement]:
    steps = 6 if quick else 18
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as output:
        trainer = _trainer(output, MICRO_BATCH, MICRO_BATCH, 2 * steps + 5)
        trainable = sum(p.numel() for p in trainer.policy.parameters() if p.requires_grad)
        torch.set_num_threads(1)  # as in a DataLoader worker process (torch gives each one thread)
        loading = []
        batches = trainer.micro_batches()
        for _ in range(steps):
            start = time.perf_counter()
            batch, micro = next(batches)
            augment_batch(batch, torch.Generator().manual_seed(micro.seed), 0.05, 0.1)
            loading.append(time.perf_counter() - start)
        trainer.config.steps = steps + 3
        one_thread = _time_steps(trainer, warmup=3)
        torch.set_num_threads(threads)
        all_threads = _time_steps(trainer, warmup=3)
    ddp_steps = 8 if quick else 18
    one, two = _ddp_step_seconds(1, ddp_steps), _ddp_step_seconds(2, ddp_steps)
    load = round(os.getloadavg()[0], 1)
    notes = {"micro_batch": MICRO_BATCH, "params_trainable_M": round(trainable / 1e6, 2), "load_average_1min": load,
             "images": "224x224 front + wrist, resized to 96 / 64", "loader": "in the training process"}

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return [
        Measurement.from_samples("training, default policy (fp32 CPU, 1 thread)", "samples/s",
                                 [MICRO_BATCH / s for s in one_thread], **notes),
        Measurement.from_samples(f"training, default policy (fp32 CPU, {threads} threads)", "samples/s",
                                 [MICRO_BATCH / s for s in all_threads], note="shared machine: see load average"),
        Measurement.from_samples("data pipeline alone (one worker, 1 thread)", "samples/s",
                                 [MICRO_BATCH / s for s in loading], target="well above training",
                                 includes="sampling, FK-cached chunk encoding, resize, normalise, collate, augment"),
        Measurement.from_samples("step, 1 process x micro-batch 4", "ms", [s * 1e3 for s in one["steps"]],
                                 OMP_NUM_THREADS=1),
        Measurement.from_samples("step, 2 DDP processes (gloo) x micro-batch 4", "ms", [s * 1e3 for s in two["steps"]],
                                 OMP_NUM_THREADS=1, global_batch=8),
        Measurement.from_samples("DDP overhead per step (2 vs 1 process, medians)", "ms",
                                 [(median(two["steps"]) - median(one["steps"])) * 1e3],
                                 note="all-reduce + two processes sharing 2 cores"),
        Measurement.from_samples("  of which one gloo all-reduce of all gradients", "ms",
                                 [s * 1e3 for s in two["all_reduce"]], floats=trainable),
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.path.insert(0, str(ROOT))
    _worker(sys.argv[2], int(sys.argv[3]))
