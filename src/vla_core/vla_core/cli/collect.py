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
from pathlib import Path

from vla_core.collect import RecoverySource, collect
from vla_core.evaluation.recovery import HandoverWindow
from vla_core.seeds import DART, DEMONSTRATIONS, EVALUATION, RECOVERY


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
    parser.add_argument("--consistent", action="store_true",
                        help="the teleoperator moves at one speed, with one hover height and pause length and no "
                             "tremor (by default each episode draws them): demonstrations without that variation")
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
                          recover, args.disturbance, args.consistent,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"vla collect: {error}", file=sys.stderr)
        return 2
    print(f"{summary.kept} of {summary.attempted} episodes written to {args.output} "
          f"({summary.succeeded} succeeded, {summary.unreachable} unreachable"
          f"{f', {summary.policy_succeeded} finished by the policy' if recover else ''}) in {summary.seconds:.0f} s")
    return 0
