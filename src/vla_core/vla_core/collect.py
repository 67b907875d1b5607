"""`vla collect`: scripted demonstrations in the MuJoCo simulation, written as a LeRobot v3.0 dataset.

No ROS: the embodiment's scripted teleoperator drives its scene directly
(`vla_core.sim.rollout`), at the profile's control rate, rendering the profile's cameras at
every frame. Each episode becomes an `Episode` (state = measured joints, action = the
teleoperator's absolute joint command, instruction in the task's training wording) and goes
through `DatasetWriter`. Episode k uses seed `--seed + k` for the scene, the task and the
teleoperator's variation, so a dataset is reproducible. Failed demonstrations are left out
unless `--keep-failed` (they are then marked `success: false`). With `--disturbance RAD` the
robot executes the teleoperator's command plus smooth noise while the undisturbed command is
recorded (DART, `vla_core.sim.rollout`), so the data shows the way back to the path.

With `--recover-with CHECKPOINT` the episodes are recovery demonstrations
(`vla_core.evaluation.recovery`): the checkpoint drives each episode in closed loop for a
handover time drawn from `--handover`, then the teleoperator finishes from there and only its
part is recorded. An episode the policy finished on its own before the handover has nothing to
recover from and is not recorded.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vla_core.data.episode import Episode
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.evaluation.recovery import HandoverWindow
from vla_core.seeds import DART, DEMONSTRATIONS, EVALUATION, RECOVERY


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
    from vla_core.evaluation.closed_loop import ClosedLoop, ExecutionSettings
    from vla_core.evaluation.environments import sim_task
    from vla_core.evaluation.policies import CheckpointPolicy
    from vla_core.up import default_params_file

    policy = CheckpointPolicy.load(checkpoint, [spec.name])
    settings = ExecutionSettings.from_params_file(default_params_file())
    return ClosedLoop(sim_task(spec.name, task_name), spec, policy, settings, scene=scene)


def collect(embodiment: str, task_name: str, episodes: int, seed: int, output: Path,
            keep_failed: bool = False, recover: RecoverySource | None = None, disturbance: float = 0.0,
            log=print) -> CollectSummary:
    """Run `episodes` scripted (or, with `recover`, recovery) demonstrations and write the kept
    ones to a new dataset at `output`; `disturbance` (rad) perturbs what scripted episodes execute."""
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
    teleop = make_teleop(spec)
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


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from vla_core.sim.tasks import TASKS

    parser = subparsers.add_parser(
        "collect", help="record scripted demonstrations in the MuJoCo simulation as a LeRobot v3.0 dataset",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--embodiment", default="so101", help="embodiment profile with a simulated scene "
                        "(so101, aloha)")
    parser.add_argument("--task", default="pick_cube", choices=sorted(TASKS), help="the task to demonstrate")
    parser.add_argument("--episodes", type=int, default=10, help="demonstrations to run")
    parser.add_argument("--seed", type=int, default=DEMONSTRATIONS.start,
                        help="seed of the first episode (then +1 per episode); vla_core.seeds keeps each use apart: "
                             f"demonstrations from {DEMONSTRATIONS.start}, DART from {DART.start}, recovery from "
                             f"{RECOVERY.start}, all below the evaluation seeds ({EVALUATION.start}+)")
    parser.add_argument("--output", type=Path, required=True, help="new dataset directory")
    parser.add_argument("--keep-failed", action="store_true", help="also write failed demonstrations")
    parser.add_argument("--recover-with", metavar="CHECKPOINT", default=None,
                        help="record recovery demonstrations: this checkpoint drives first, then the teleoperator")
    parser.add_argument("--handover", type=_window, default=HandoverWindow(1.0, 10.0), metavar="EARLIEST,LATEST",
                        help="with --recover-with: simulated seconds within which the teleoperator takes over "
                             "(default 1,10)")
    parser.add_argument("--disturbance", type=float, default=0.0, metavar="RAD",
                        help="DART: the robot executes the teleoperator's command plus smooth noise of this "
                             "standard deviation per arm joint, the undisturbed command is recorded (default 0)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="with --recover-with: torch intra-op threads (0 = torch's default); one keeps the "
                             "policy from stalling on OpenMP spin-waits beside the simulation, as in vla eval")
    parser.set_defaults(run=_run)


def _window(value: str) -> HandoverWindow:
    try:
        earliest, latest = (float(item) for item in value.split(","))
        return HandoverWindow(earliest, latest)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected EARLIEST,LATEST seconds with 0 < EARLIEST <= LATEST, "
                                         f"got {value!r} ({error})") from None


def _run(args: argparse.Namespace) -> int:
    recover = RecoverySource(args.recover_with, args.handover) if args.recover_with else None
    if recover and args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    try:
        summary = collect(args.embodiment, args.task, args.episodes, args.seed, args.output, args.keep_failed,
                          recover, args.disturbance, log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"vla collect: {error}", file=sys.stderr)
        return 2
    print(f"{summary.kept} of {summary.attempted} episodes written to {args.output} "
          f"({summary.succeeded} succeeded, {summary.unreachable} unreachable"
          f"{f', {summary.policy_succeeded} finished by the policy' if recover else ''}) in {summary.seconds:.0f} s")
    return 0
