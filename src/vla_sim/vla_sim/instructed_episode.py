"""One instructed episode of a deployed policy against the simulation, judged by the simulation.

    instructed_episode --seed 100000 --time-limit 30

With `sim_node` and the runtime nodes (`vla up`) running, this waits until the policy node
serves, resets the scene (seeded), waits until it serves again from post-reset observations, sends the instruction as an
`ExecuteInstruction` goal, and while it runs watches `task_state`: when the simulation reports
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

import rclpy
from rclpy.action import ActionClient
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from vla_core.embodiment import load_embodiment
from vla_core.evaluation import EVAL_SEED_BASE
from vla_policy_node.ros_time import seconds_to_duration, stamp_to_seconds

from vla_msgs.action import ExecuteInstruction
from vla_msgs.msg import PolicyStatus

from .sim_client import EpisodeError, SimulationClient

OUTCOMES = {ExecuteInstruction.Result.OUTCOME_SUCCEEDED: "succeeded", ExecuteInstruction.Result.OUTCOME_TIMED_OUT:
            "timed out", ExecuteInstruction.Result.OUTCOME_CANCELED: "canceled",
            ExecuteInstruction.Result.OUTCOME_ABORTED: "aborted"}


class InstructedEpisode:
    """The policy node's action, status and success service, beside the simulation client."""

    def __init__(self, sim: SimulationClient, command_topic: str, policy: str) -> None:
        self.sim = sim
        node = sim.node
        self.status: PolicyStatus | None = None
        self.status_rewinds = 0  # times the status stamps went back: resets of the simulated clock
        self.commands = 0
        node.create_subscription(PolicyStatus, f"{policy}/status", self._on_status, 10)
        node.create_subscription(JointTrajectory, command_topic, self._on_command,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.goals = ActionClient(node, ExecuteInstruction, f"{policy}/execute_instruction")
        self.mark_success = node.create_client(Trigger, f"{policy}/mark_success")

    def _on_status(self, msg: PolicyStatus) -> None:
        if self.status is not None and stamp_to_seconds(msg.header.stamp) < stamp_to_seconds(self.status.header.stamp):
            self.status_rewinds += 1
        self.status = msg

    def _on_command(self, msg: JointTrajectory) -> None:
        self.commands += 1

    def wait_ready(self, rewinds: int, timeout: float, what: str) -> None:
        if not self.sim.spin_until(lambda: self.ready(rewinds), timeout):
            detail = self.status.detail if self.status else "no status at all"
            raise EpisodeError(f"the policy node did not come up {what} within {timeout:.0f} s: {detail}")

    def ready(self, rewinds: int = 0) -> bool:
        """The policy node serves, from observations taken after `rewinds` resets of the clock."""
        return (self.status is not None and self.status.state == PolicyStatus.STATE_READY
                and self.status_rewinds >= rewinds)

    def run(self, seed: int, wording: str, time_limit: float, ready_timeout: float) -> tuple[str, bool, float | None]:
        """(instruction, success, simulated seconds to success)."""
        sim = self.sim
        self.wait_ready(0, ready_timeout, "to serve (checkpoint loaded, every input fresh)")
        rewinds = self.status_rewinds
        task = sim.reset(seed, wording)
        start = stamp_to_seconds(task.header.stamp)
        # the status stream rewinds with the clock; READY after that is about the new scene
        self.wait_ready(rewinds + 1, ready_timeout, "to serve again after the reset")
        if not self.goals.wait_for_server(timeout_sec=ready_timeout):
            raise EpisodeError("the policy node's execute_instruction action is not available")
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
        print(f"policy episode (seed {seed}) {task.instruction!r}: {OUTCOMES.get(outcome.outcome, '?')} "
              f"({outcome.reason}); success: {str(success_at is not None).lower()}"
              + (f" after {success_at:.1f} s simulated" if success_at is not None else "")
              + f"; commands received: {self.commands}; chunks executed: {outcome.chunks_executed}", flush=True)
        return task.instruction, success_at is not None, success_at


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
    rclpy.init()
    node = rclpy.create_node("instructed_episode")
    try:
        episode = InstructedEpisode(SimulationClient(node), spec.command_topic, args.policy)
        episode.run(args.seed, args.wording, args.time_limit, args.ready_timeout)
        if episode.commands == 0:
            raise EpisodeError(f"no command reached the robot on {spec.command_topic}")
    except EpisodeError as error:
        print(f"instructed_episode: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
