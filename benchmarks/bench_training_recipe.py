"""Where a training step of the shipped recipe goes on this machine, and what freezing the stems buys.

The policy is the recipe's (config/train/default_checkpoint.yaml: 96 px main view, 64 px wrist
views, 16 instructed keypoints, the gripper BCE head), the batch its 32 samples plus 32 keypoint
views, on synthetic SO-101 and ALOHA episodes at the policy's image sizes (the datasets are
decoded to those sizes once at load, so this is the per-step work of a real run). Keypoint views
are random pixels with labels in the recipe's shapes: the cost of a view does not depend on what
it shows.

Rows:
- a whole optimizer step through `Trainer.train_step`: images (the recipe today), then the same
  after `freeze_stems_at` (the stems' outputs read from the feature cache), with the flow head and
  the regression head, at batch 32 and at batch 128;
- the image step taken apart: the data path, the main-view stem (batch and keypoint views), the
  wrist stem, everything after the stems (text fusion, keypoints, expert, losses), the optimizer;
  each forward and backward timed alone on the same shapes, so their sum can be set beside the step.
"""
from __future__ import annotations

import os
import tempfile
import time

import torch

from benchmarks.measure import Measurement

IMAGE, WRIST = 96, 64
KEYPOINT_VIEWS = 32


def _episodes() -> list[list]:
    from tests.core.training_episodes import synthetic_episode

    return [[synthetic_episode("so101", 120, seed, image=IMAGE) for seed in range(4)],
            [synthetic_episode("aloha", 120, seed, image=IMAGE) for seed in range(4)]]


def _trainer(output: str, head: str, batch: int, freeze_at: int, steps: int):
    from vla_core.training.config import TrainConfig
    from vla_core.training.keypoint_set import KeypointSet
    from vla_core.training.keypoint_supervision import KeypointSupervision
    from vla_core.training.loop import Trainer

    config = TrainConfig(datasets=[{"path": "synthetic so101"}, {"path": "synthetic aloha"}], steps=steps,
                         batch_size=batch, micro_batch_size=batch, warmup_steps=1, held_out_episodes=0,
                         policy={"main_keypoints": 16, "gripper_bce_weight": 1.0, "head": head},
                         augment_shift=0.0, freeze_stems_at=freeze_at, output_dir=output)
    trainer = Trainer(config, _episodes(), device="cpu")
    generator = torch.Generator().manual_seed(0)
    views = KeypointSet(torch.randint(0, 256, (256, 3, IMAGE, IMAGE), generator=generator, dtype=torch.uint8),
                        ["pick up the red cube"] * 256, torch.rand(256, 1, 2, generator=generator) * 2 - 1)
    trainer.config.keypoint_batch_size = KEYPOINT_VIEWS
    trainer.keypoints = KeypointSupervision.of_views(trainer.config, views, {})
    return trainer


def _step_seconds(trainer, start: int, steps: int, warmup: int) -> list[float]:
    trainer.policy.train()
    batches = (trainer.frozen_stem_batches(start) if trainer.config.freeze_stems_at >= 0 else trainer.micro_batches())
    seconds = []
    for step in range(start, start + steps):
        began = time.perf_counter()
        trainer.train_step(step, batches)
        if step >= start + warmup:
            seconds.append(time.perf_counter() - began)
    return seconds


def _seconds(fn, repeats: int) -> list[float]:
    fn()
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return samples


def _components(trainer, repeats: int) -> dict[str, list[float]]:
    """Seconds of each part of one image step, timed alone (forward and backward)."""
    from vla_core.training.augment import augment_batch

    policy, config = trainer.policy, trainer.config
    batches = trainer.micro_batches()
    generator = torch.Generator().manual_seed(1)

    def data() -> dict:
        batch, micro = next(batches)
        batch = augment_batch(batch, generator, config.augment_shift, config.augment_color)
        return trainer.keypoints.add_to(batch, generator)

    batch = data()
    main = torch.cat([batch["main_images"][:, 0], batch["keypoint_images"]])
    wrist = batch["wrist_images"]

    def backward(outputs) -> None:
        sum(output.float().sum() for output in outputs).backward()

    cached = {**batch, **{name: value.detach() for name, value in zip(
        ("main_tokens", "main_fine"), (t[:, None] for t in policy.vision_language.stem_features(batch["main_images"][:, 0])))},
        "wrist_tokens": policy.wrist.patch_tokens(wrist).detach(),
        "keypoint_fine": policy.vision_language.stem_features(batch["keypoint_images"])[1].detach()}
    for name in ("main_images", "wrist_images", "keypoint_images"):
        cached.pop(name)

    def after_stems() -> None:
        losses = policy(cached, generator=torch.Generator().manual_seed(2))
        (losses["loss"] + losses["keypoint_loss"]).backward()

    return {
        "data path (sample, collate, augment, keypoint views)": _seconds(data, repeats),
        f"main-view stem, forward + backward ({len(main)} views)":
            _seconds(lambda: backward(policy.vision_language.stem_features(main)), repeats),
        f"wrist stem, forward + backward ({wrist.shape[0]} x {wrist.shape[1]} views)":
            _seconds(lambda: backward([policy.wrist.patch_tokens(wrist)]), repeats),
        "after the stems: fusion, keypoints, expert, losses (forward + backward)": _seconds(after_stems, repeats),
        "optimizer (AdamW, clip)": _seconds(lambda: (torch.nn.utils.clip_grad_norm_(
            [p for p in policy.parameters() if p.requires_grad], 1.0), trainer.optimizer.step()), repeats),
    }


def run(quick: bool) -> list[Measurement]:
    """One torch thread throughout: on these two cores, shared with the simulation or other jobs, two
    threads spin-wait on each other (measured: a step several times slower at a load of 5-11)."""
    steps = 6 if quick else 16
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(steps)
    finally:
        torch.set_num_threads(threads)


def _measure(steps: int) -> list[Measurement]:
    load = round(os.getloadavg()[0], 1)
    notes = {"threads": 1, "load_average_1min": load}
    rows = []
    with tempfile.TemporaryDirectory() as output:
        trainer = _trainer(output, "flow", 32, -1, steps + 3)
        image_step = _step_seconds(trainer, 0, steps + 3, warmup=3)
        rows.append(Measurement.from_samples("recipe step on images (flow, batch 32 + 32 keypoint views)",
                                             "samples/s", [32 / s for s in image_step], **notes))
        parts = _components(trainer, steps)
        total = sum(sorted(v)[len(v) // 2] for v in parts.values())
        for name, values in parts.items():
            rows.append(Measurement.from_samples(f"  {name}", "ms", [v * 1e3 for v in values],
                                                 share_of_parts=round(sorted(values)[len(values) // 2] / total, 3)))
    for head, batch in (("flow", 32), ("regression", 32), ("regression", 64)):
        with tempfile.TemporaryDirectory() as output:
            trainer = _trainer(output, head, batch, 0, steps + 3)
            began = time.perf_counter()
            frozen = _step_seconds(trainer, 0, steps + 3, warmup=3)
            rows.append(Measurement.from_samples(
                f"step on cached stem features ({head}, batch {batch} + {KEYPOINT_VIEWS} keypoint maps)", "samples/s",
                [batch / s for s in frozen], first_call_with_cache_build_s=round(time.perf_counter() - began
                                                                                 - sum(frozen), 1), **notes))
    return rows
