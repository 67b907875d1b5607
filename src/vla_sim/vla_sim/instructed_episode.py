"""One instructed episode of a deployed policy against the simulation, judged by the simulation.

    instructed_episode --seed 100000 --time-limit 30

With `sim_node` and the runtime nodes (`vla up`) running, this waits until the policy node
serves, resets the scene (seeded), waits until it serves again from post-reset observations
(`SETTLE` simulated seconds after the reset), sends the instruction as an `ExecuteInstruction` goal, and while it runs watches `task_state`: when the simulation reports
the task done it calls the policy node's `~/mark_success`, as a success detector or an
operator would. It prints one line with the outcome, the commands the robot received and the
chunks executed. The exit status is 0 whether or not the task succeeded (an untrained policy
failing is a result, not an error); 1 when the graph did not run the episode (no node, no
command reached the robot).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from rclpy.action import ActionClient
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from vla_core.embodiment import load_embodiment
from vla_core.evaluation import EVAL_SEED_BASE
from vla_policy_node.ros_time import seconds_to_duration, stamp_to_seconds

from vla_msgs.action import ExecuteInstruction
from vla_msgs.msg import PolicyStatus, TaskState

from .sim_client import EpisodeError, SimulationClient, run_client

SETTLE = 0.5  # simulated s after a reset before the goal: the policy's newest frames show the new scene
OUTCOMES = {ExecuteInstruction.Result.OUTCOME_SUCCEEDED: "succeeded", ExecuteInstruction.Result.OUTCOME_TIMED_OUT:
            "timed out", ExecuteInstruction.Result.OUTCOME_CANCELED: "canceled",
            ExecuteInstruction.Result.OUTCOME_ABORTED: "aborted"}


@dataclass(frozen=True)
class EpisodeResult:
    """One instructed episode as the simulation judged it."""

    seed: int
    instruction: str
    time_to_success: float | None  # simulated seconds from the reset; None = the task never held
    outcome: str  # how the goal ended: succeeded, timed out, canceled, aborted
    reason: str
    commands: int  # JointTrajectory messages the robot received while the goal ran
    chunks_executed: int
    wall_seconds: float

    @property
    def success(self) -> bool:
        return self.time_to_success is not None

    def line(self) -> str:
        after = f" after {self.time_to_success:.1f} s simulated" if self.success else ""
        return (f"policy episode (seed {self.seed}) {self.instruction!r}: {self.outcome} ({self.reason}); "
                f"success: {str(self.success).lower()}{after}; commands received: {self.commands}; "
                f"chunks executed: {self.chunks_executed}")


class InstructedEpisode:
    """The policy node's action, status and success service, beside the simulation client."""

    def __init__(self, sim: SimulationClient, command_topic: str, policy: str) -> None:
        self.sim = sim
        node = sim.node
        self.status: PolicyStatus | None = None
        self.commands = 0
        node.create_subscription(PolicyStatus, f"{policy}/status", self._on_status, 10)
        node.create_subscription(JointTrajectory, command_topic, self._on_command,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.goals = ActionClient(node, ExecuteInstruction, f"{policy}/execute_instruction")
        self.mark_success = node.create_client(Trigger, f"{policy}/mark_success")

    def _on_status(self, msg: PolicyStatus) -> None:
        self.status = msg

    def _on_command(self, msg: JointTrajectory) -> None:
        self.commands += 1

    def wait_ready(self, timeout: float, what: str, since: float = 0.0) -> None:
        if not self.sim.spin_until(lambda: self.ready(since), timeout):
            detail = self.status.detail if self.status else "no status at all"
            raise EpisodeError(f"the policy node did not come up {what} within {timeout:.0f} s: {detail}")

    def ready(self, since: float = 0.0) -> bool:
        """The policy node serves, by a status stamped at or after `since` (simulated seconds)."""
        return (self.status is not None and self.status.state == PolicyStatus.STATE_READY
                and stamp_to_seconds(self.status.header.stamp) >= since)

    def run(self, seed: int, wording: str, time_limit: float, ready_timeout: float,
            on_start: Callable[[TaskState], None] | None = None) -> EpisodeResult:
        """Reset, wait for post-reset observations, run the goal and judge it. `on_start` is called
        with the episode's first task_state just before the goal is sent (the demo starts keeping
        frames there)."""
        sim = self.sim
        started_wall = time.monotonic()
        self.wait_ready(ready_timeout, "to serve (checkpoint loaded, every input fresh)")
        task = sim.reset(seed, wording)
        start = stamp_to_seconds(task.header.stamp)
        self.wait_ready(ready_timeout, "to serve again after the reset", since=start + SETTLE)
        if not self.goals.wait_for_server(timeout_sec=ready_timeout):
            raise EpisodeError("the policy node's execute_instruction action is not available")
        if on_start is not None:
            on_start(task)
        self.commands = 0  # those the robot receives while the goal runs
        sent = self.goals.send_goal_async(ExecuteInstruction.Goal(instruction=task.instruction,
                                                                  time_limit=seconds_to_duration(time_limit)))
        if not sim.spin_until(sent.done, 30.0) or not sent.result().accepted:
            raise EpisodeError(f"the policy node did not accept the goal {task.instruction!r}")
        result = sent.result().get_result_async()
        success_at = None
        deadline = time.monotonic() + 10 * time_limit + 60  # the simulation may run far slower than real time
        while not result.done() and time.monotonic() < deadline:
            rclpy.spin_once(sim.node, timeout_sec=0.05)
            if success_at is None and sim.succeeded(task.episode):
                success_at = stamp_to_seconds(sim.task.header.stamp) - start
                sim.call(self.mark_success, Trigger.Request())
        if not result.done():
            raise EpisodeError(f"the goal did not end within {10 * time_limit + 60:.0f} wall seconds")
        outcome = result.result().result
        return EpisodeResult(seed, task.instruction, success_at, OUTCOMES.get(outcome.outcome, "?"), outcome.reason,
                             self.commands, outcome.chunks_executed, time.monotonic() - started_wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="instructed_episode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embodiment", default="so101", help="profile of the robot (its command topic is watched)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_BASE, help="seed of the episode")
    parser.add_argument("--wording", choices=("training", "held_out"), default="training")
    parser.add_argument("--time-limit", type=float, default=30.0, help="simulated seconds the policy gets")
    parser.add_argument("--ready-timeout", type=float, default=180.0,
                        help="wall seconds for the policy node to serve (checkpoint loading included)")
    parser.add_argument("--policy", default="vla_policy", help="the policy node's name (with namespace)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.time_limit <= 0:
        parser.error(f"--time-limit must be > 0 simulated seconds, got {args.time_limit}")
    spec = load_embodiment(args.embodiment)

    def episode(sim: SimulationClient) -> int:
        result = InstructedEpisode(sim, spec.command_topic, args.policy).run(
            args.seed, args.wording, args.time_limit, args.ready_timeout)
        print(result.line(), flush=True)
        if result.commands == 0:
            raise EpisodeError(f"no command reached the robot on {spec.command_topic}")
        return 0

    return run_client("instructed_episode", episode)

if __name__ == "__main__":
    sys.exit(main())
