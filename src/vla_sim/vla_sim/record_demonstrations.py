"""Record demonstrations as an operator does: with the simulation, the scripted leader arm and the
recorder running as separate processes, press "start", teleoperate, press "stop".

    record_demonstrations --episodes 30 --seed-base 0

Once the recorder is subscribed to every topic of its profile, for each episode: the
simulation's `reset` service starts a seeded episode (its instruction comes back), the
recorder's `start_episode` opens a bag with that instruction, the scripted teleoperator
(`scripted_teleop`) plans and plays the task, and once it says on `<teleop>/plan_finished`
that the plan is played out, `stop_episode` closes the bag with the task's success from
`task_state`. A demonstration that failed is discarded (what an operator does with a botched
take) unless `--keep-failures`; one that does not finish within `--timeout` wall seconds is
discarded. It goes on until `--episodes` successful episodes are
on disk or `--max-attempts` are spent; the exit status is 1 when fewer were recorded.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt64

from vla_msgs.srv import DiscardEpisode, StartEpisode, StopEpisode

from .sim_client import EpisodeError, SimulationClient, run_client

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SETTLE_SECONDS = 2.0  # wall seconds after the plan's end for task_state to report the outcome


@dataclass
class Take:
    """One attempt: what was asked, how it ended, where it is."""

    seed: int
    instruction: str
    outcome: str  # "success", "failure" or "timeout"
    kept: bool
    bag_path: str
    wall_seconds: float


class DemonstrationRecorder:
    """Drives the reset service, the recorder's services and waits on the teleoperator."""

    def __init__(self, sim: SimulationClient, recorder: str, teleop: str) -> None:
        self.sim = sim
        node = sim.node
        self.start_client = node.create_client(StartEpisode, f"{recorder}/start_episode")
        self.stop_client = node.create_client(StopEpisode, f"{recorder}/stop_episode")
        self.discard_client = node.create_client(DiscardEpisode, f"{recorder}/discard_episode")
        self.finished: int | None = None  # the newest episode whose plan the teleoperator played out
        self.recorder_status: DiagnosticStatus | None = None
        node.create_subscription(UInt64, f"{teleop}/plan_finished", self._on_finished, LATCHED)
        node.create_subscription(DiagnosticStatus, f"{recorder}/status", self._on_status, 10)

    def _on_finished(self, msg: UInt64) -> None:
        self.finished = msg.data

    def _on_status(self, msg: DiagnosticStatus) -> None:
        self.recorder_status = msg

    def wait_for_recorder(self, timeout: float) -> None:
        """Until the recorder has subscribed to every topic of its profile: an episode started
        earlier would miss a stream (the recorder subscribes as publishers appear)."""
        def subscribed() -> bool:
            values = {kv.key: kv.value for kv in self.recorder_status.values} if self.recorder_status else {}
            return values.get("waiting_for_publishers") == ""

        if not self.sim.spin_until(subscribed, timeout):
            why = self.recorder_status.message if self.recorder_status else "no status from it"
            raise EpisodeError(f"the recorder is not subscribed to every topic after {timeout:.0f} s: {why}")

    def take(self, seed: int, wording: str, timeout: float, keep_failures: bool) -> Take:
        started = time.monotonic()
        task = self.sim.reset(seed, wording)
        episode = task.episode
        opened = self.sim.call(self.start_client, StartEpisode.Request(
            instruction=task.instruction, operator_notes=f"scripted teleoperator, {task.task}, seed {seed}"))
        if not opened.success:
            raise EpisodeError(f"the recorder refused to start: {opened.message}")
        played = self.sim.spin_until(lambda: self.finished == episode, timeout)
        if played:
            self.sim.spin_until(lambda: self.sim.succeeded(episode), SETTLE_SECONDS)
        success = played and self.sim.succeeded(episode)
        outcome = "success" if success else "failure" if played else "timeout"
        if success or (played and keep_failures):
            closed = self.sim.call(self.stop_client, StopEpisode.Request(task_success=success))
            if not closed.success:
                raise EpisodeError(f"the recorder did not stop the episode: {closed.message}")
            return Take(seed, task.instruction, outcome, True, closed.bag_path, time.monotonic() - started)
        dropped = self.sim.call(self.discard_client, DiscardEpisode.Request())
        if not dropped.success:
            raise EpisodeError(f"the recorder did not discard the episode: {dropped.message}")
        return Take(seed, task.instruction, outcome, False, "", time.monotonic() - started)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="record_demonstrations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10, help="successful episodes to record")
    parser.add_argument("--seed-base", type=int, default=0, help="seed of the first attempt (then +1 each)")
    parser.add_argument("--wording", choices=("training", "held_out"), default="training",
                        help="instruction wording the episodes are recorded with")
    parser.add_argument("--max-attempts", type=int, default=None, help="default: twice --episodes")
    parser.add_argument("--timeout", type=float, default=180.0, help="wall seconds per episode before a discard")
    parser.add_argument("--keep-failures", action="store_true",
                        help="keep failed demonstrations (marked unsuccessful) instead of discarding them")
    parser.add_argument("--recorder", default="vla_recorder", help="the recorder node's name (with namespace)")
    parser.add_argument("--teleop", default="scripted_teleop", help="the scripted teleoperator's node name")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.timeout <= 0:
        parser.error(f"--episodes must be >= 1 and --timeout > 0, got {args.episodes} and {args.timeout}")
    args.max_attempts = args.max_attempts or 2 * args.episodes
    if args.max_attempts < args.episodes:
        parser.error(f"--max-attempts {args.max_attempts} is fewer than --episodes {args.episodes}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def record(sim: SimulationClient) -> int:
        driver = DemonstrationRecorder(sim, args.recorder, args.teleop)
        driver.wait_for_recorder(args.timeout)
        kept = 0
        for attempt in range(args.max_attempts):
            take = driver.take(args.seed_base + attempt, args.wording, args.timeout, args.keep_failures)
            kept += take.outcome == "success"
            where = take.bag_path if take.kept else "discarded"
            print(f"attempt {attempt + 1} (seed {take.seed}) {take.instruction!r}: {take.outcome}, "
                  f"{take.wall_seconds:.0f} s wall -> {where} [{kept}/{args.episodes} successful]", flush=True)
            if kept == args.episodes:
                return 0
        raise EpisodeError(f"only {kept} of {args.episodes} episodes succeeded in {args.max_attempts} attempts")

    return run_client("record_demonstrations", record)

if __name__ == "__main__":
    sys.exit(main())
