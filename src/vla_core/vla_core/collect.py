"""Scripted (or recovery) demonstrations in the MuJoCo simulation, written as a LeRobot v3.0 dataset.

The library behind `vla collect`: vla_core.cli.collect parses its flags, and its help says what
each one does (seeds, DART disturbance, recovery from a checkpoint).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vla_core.data.episode import Episode
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.evaluation.recovery import HandoverWindow


@dataclass(frozen=True)
class CollectSummary:
    attempted: int
    kept: int
    succeeded: int
    unreachable: int
    seconds: float
    policy_succeeded: int = 0  # recovery episodes the policy finished before the handover


@dataclass(frozen=True)
class RecoverySource:
    """The checkpoint whose closed-loop states the teleoperator recovers from, and when it takes over."""

    checkpoint: str
    handover: HandoverWindow


def _image_size(spec: EmbodimentSpec) -> int:
    """The scenes render square frames of one size; the profile's cameras must agree on it."""
    sizes = {(camera.width, camera.height) for camera in spec.cameras}
    if len(sizes) != 1 or any(width != height for width, height in sizes):
        raise ValueError(f"profile {spec.name}: the simulation renders every camera at one square size, "
                         f"the cameras ask for {sorted(sizes)}")
    return next(iter(sizes))[0]


def _recovery_loop(spec: EmbodimentSpec, task_name: str, checkpoint: str, scene):
    """The closed loop `vla eval` would run the checkpoint in, on the collector's scene."""
    from vla_core.evaluation.closed_loop import ClosedLoop
    from vla_core.runtime.control_step import ExecutionSettings
    from vla_core.evaluation.environments import sim_task
    from vla_core.evaluation.policies import CheckpointPolicy
    from vla_core.config_files import find_config_file

    policy = CheckpointPolicy.load(checkpoint, [spec.name])
    settings = ExecutionSettings.from_params_file(find_config_file("policy.yaml"))
    return ClosedLoop(sim_task(spec.name, task_name), spec, policy, settings, scene=scene)


def collect(embodiment: str, task_name: str, episodes: int, seed: int, output: Path,
            keep_failed: bool = False, recover: RecoverySource | None = None, disturbance: float = 0.0,
            consistent: bool = False, log=print) -> CollectSummary:
    """Run `episodes` scripted (or, with `recover`, recovery) demonstrations and write the kept
    ones to a new dataset at `output`; `disturbance` (rad) perturbs what scripted episodes execute;
    `consistent`: the teleoperator moves at one speed with one hover height and pause length, no tremor."""
    from vla_core.data.lerobot_v3 import DatasetWriter
    from vla_core.evaluation.recovery import run_recovery_episode
    from vla_core.sim.factory import make_scene, make_teleop
    from vla_core.sim.rollout import check_disturbance, run_scripted_episode
    from vla_core.sim.tasks import sample_task
    from vla_core.sim.teleop import UnreachableCube

    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    check_disturbance(disturbance)  # before the scene and the dataset are made
    if disturbance and recover:
        raise ValueError("--disturbance perturbs scripted episodes; a recovery episode's start is the checkpoint's "
                         "own drift: use one or the other")
    spec = load_embodiment(embodiment)
    scene = make_scene(spec.name, task_name, _image_size(spec))
    missing = [camera.name for camera in spec.cameras if camera.name not in scene.cameras]
    if missing:
        raise ValueError(f"profile {spec.name} names cameras {missing} the {spec.name} scene lacks "
                         f"(it has {list(scene.cameras)})")
    teleop = make_teleop(spec, consistent=consistent)
    cameras = tuple(camera.name for camera in spec.cameras)
    kept = succeeded = unreachable = policy_succeeded = 0
    start = time.monotonic()
    try:
        loop = _recovery_loop(spec, task_name, recover.checkpoint, scene) if recover else None
        with DatasetWriter(output, spec, spec.control_rate_hz) as writer:
            for index in range(episodes):
                episode_seed = seed + index
                task = sample_task(task_name, episode_seed, scene.colours)
                instruction = task.instruction("training")
                metadata = {"seed": episode_seed, "task": task.name, "target": task.colour,
                            "source": "vla collect (scripted teleoperator in MuJoCo)"}
                try:
                    if loop is None:
                        rollout = run_scripted_episode(scene, task, teleop, episode_seed, cameras, disturbance)
                        if disturbance:
                            metadata.update(disturbance_rad=disturbance)
                        if consistent:
                            metadata.update(consistent_teleoperator=True)
                    else:
                        handover = recover.handover.draw(episode_seed)
                        rollout = run_recovery_episode(loop, teleop, episode_seed, handover, cameras)
                        if rollout is None:
                            policy_succeeded += 1
                            log(f"[{index + 1}/{episodes}] seed {episode_seed}: the policy succeeded within "
                                f"{handover:.1f} s, nothing to recover from")
                            continue
                        metadata.update(source="vla collect --recover-with (the checkpoint drove, then the scripted "
                                               "teleoperator took over)",
                                        checkpoint=recover.checkpoint, handover_seconds=round(handover, 3))
                except UnreachableCube as error:
                    unreachable += 1
                    log(f"[{index + 1}/{episodes}] seed {episode_seed}: skipped, {error}")
                    continue
                succeeded += rollout.success
                keep = rollout.success or keep_failed
                if keep:
                    writer.add(Episode(
                        name=f"{spec.name}_{task.name}_seed{episode_seed}", embodiment=spec.name,
                        task=instruction, fps=spec.control_rate_hz, timestamps=rollout.timestamps,
                        state=rollout.state, action=rollout.action, images=rollout.images,
                        success=rollout.success, metadata=metadata))
                    kept += 1
                elapsed = time.monotonic() - start
                log(f"[{index + 1}/{episodes}] seed {episode_seed}: {instruction!r} "
                    f"{'succeeded' if rollout.success else 'FAILED'}, {len(rollout.timestamps)} frames, "
                    f"{'kept' if keep else 'left out'} ({kept} kept, {elapsed:.0f} s, "
                    f"{elapsed / (index + 1):.1f} s per episode)")
            if kept == 0:
                raise RuntimeError(f"no episode to write: none of the {episodes} demonstrations succeeded")
    finally:
        scene.close()
    return CollectSummary(episodes, kept, succeeded, unreachable, time.monotonic() - start, policy_succeeded)
