"""`make demo`'s closed loop: simulation, policy node and executor as separate processes over DDS.

For every embodiment the simulation node offers (read from its `embodiment` parameter check),
this starts the MuJoCo scene (`vla_sim`) and the two runtime nodes (`vla up`, simulated time),
(DEMO_EMBODIMENTS, comma-separated, picks some), then runs DEMO_EPISODES instructed episodes: the scene's `reset` service draws a seeded task
(training and held-out wordings alternate), an ExecuteInstruction goal hands its sentence to
the policy node, and the episode ends at success (`task_state`, then `~/mark_success`) or at
DEMO_EPISODE_SECONDS of simulated time. It prints success and latency and writes into
outputs/demo/ an image strip of the main camera and a plot of joint targets against measured
joints over the first episode.

The checkpoint is checkpoints/default/ when it exists (a trained one), else the untrained
bring-up checkpoint (`vla init-checkpoint`, which barely moves the arm: every part is real,
but it does not pick the cube).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory
from vla_core.bringup_checkpoint import write_initial_checkpoint
from vla_core.embodiment import available_embodiments, load_embodiment
from vla_core.evaluation import EVAL_SEED_BASE
from vla_core.evaluation.report import plot_joint_tracking, write_image_strip
from vla_core.policy_set import is_policy_set, served_embodiments
from vla_policy_node.ros_time import stamp_to_seconds
from vla_policy_node.status import STATE_NAMES
from vla_sim.instructed_episode import EpisodeResult, InstructedEpisode
from vla_sim.sim_client import SimulationClient

from vla_msgs.msg import PolicyStatus

ROOT = Path(__file__).resolve().parents[1]
TRAINED = ROOT / "checkpoints" / "default"
CACHE = ROOT / ".cache"
OUTPUT = ROOT / "outputs" / "demo"
EPISODES = int(os.environ.get("DEMO_EPISODES", "3"))
EPISODE_SECONDS = float(os.environ.get("DEMO_EPISODE_SECONDS", "10"))  # simulated
START_TIMEOUT = 120.0  # wall seconds for the nodes to come up and serve a first chunk
READY_TIMEOUT = 60.0  # wall seconds for the policy node to have fresh observations after a reset
FRAME_PERIOD = 0.5  # simulated seconds between the frames kept for the image strip


def simulated_embodiments() -> list[str]:
    """Profiles the simulation node's `embodiment` parameter accepts."""
    from vla_sim.sim_node import PARAMETERS

    param = next(p for p in PARAMETERS if p.name == "embodiment")
    names = available_embodiments()
    wanted = [n.strip() for n in os.environ.get("DEMO_EMBODIMENTS", "").split(",") if n.strip()] or names
    return [name for name in wanted if param.check is None or param.check(name) is None]


def checkpoint_for(embodiments: list[str]) -> tuple[Path, str, list[str]]:
    """The checkpoint, what it is, and the simulated embodiments it was made for."""
    if is_policy_set(TRAINED) or (TRAINED / "model.safetensors").is_file():
        covered = served_embodiments(TRAINED)
        return TRAINED, f"the trained checkpoint {TRAINED.relative_to(ROOT)}", [e for e in embodiments if e in covered]
    bringup = CACHE / f"bringup_{'_'.join(embodiments)}"
    if not (bringup / "model.safetensors").is_file():
        write_initial_checkpoint(embodiments, bringup)
    return bringup, "the untrained bring-up checkpoint (no checkpoints/default/ yet): it barely moves", embodiments


@dataclass
class Recording:
    """What the demo's own node hears, for the report."""

    executor: PolicyStatus | None = None  # the executor's newest status
    commands: int = 0
    target: np.ndarray | None = None  # the first point of the newest JointTrajectory
    samples: list[tuple[float, np.ndarray, np.ndarray]] = field(default_factory=list)  # (time, target, measured)
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)
    keep: bool = False  # record samples and frames (first episode only)


class DemoClient:
    def __init__(self, spec, recording: Recording) -> None:
        self.spec, self.rec = spec, recording
        self.node = node = rclpy.create_node(f"vla_demo_{spec.name}")
        self.sim = SimulationClient(node)  # reset, task_state, spinning and service calls
        self.episode = InstructedEpisode(self.sim, spec.command_topic, "vla_policy")  # goal, success, readiness
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(JointTrajectory, spec.command_topic, self._on_command, reliable)
        node.create_subscription(JointState, spec.joint_state_topic, self._on_joints, qos_profile_sensor_data)
        node.create_subscription(Image, spec.main_camera.topic, self._on_image, qos_profile_sensor_data)
        node.create_subscription(PolicyStatus, "vla_executor/status", lambda m: setattr(recording, "executor", m), 10)

    def _on_command(self, msg: JointTrajectory) -> None:
        self.rec.commands += 1
        if msg.points:
            target = np.full(self.spec.state_dim, np.nan)
            for name, value in zip(msg.joint_names, msg.points[0].positions):
                target[self.spec.joint_names.index(name)] = value
            self.rec.target = target

    def _on_joints(self, msg: JointState) -> None:
        order = [list(msg.name).index(n) for n in self.spec.joint_names]
        now = stamp_to_seconds(msg.header.stamp)
        joints = np.asarray(msg.position)[order]
        if self.rec.keep:
            target = self.rec.target if self.rec.target is not None else np.full(len(joints), np.nan)
            self.rec.samples.append((now, target.copy(), joints))

    def _on_image(self, msg: Image) -> None:
        now = stamp_to_seconds(msg.header.stamp)
        if self.rec.keep and (not self.rec.frames or abs(now - self.rec.frames[-1][0]) >= FRAME_PERIOD):
            pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width * 3]
            self.rec.frames.append((now, pixels.reshape(msg.height, msg.width, 3).copy()))


def run_episode(client: DemoClient, seed: int, wording: str, keep: bool) -> EpisodeResult:
    """One instructed episode; with `keep`, frames and joint samples are kept from the goal on."""
    def start_keeping(_task) -> None:
        client.rec.samples.clear()
        client.rec.frames.clear()
        client.rec.keep = True

    return client.episode.run(seed, wording, EPISODE_SECONDS, READY_TIMEOUT, on_start=start_keeping if keep else None)


def demo_embodiment(name: str, checkpoint: Path) -> list[EpisodeResult]:
    spec = load_embodiment(name)
    print(f"\n== {name}: simulation, policy node and executor as three processes over DDS ==", flush=True)
    simulation = [sys.executable, "-m", "vla_sim.sim_node", "--ros-args", "-p", f"embodiment:={name}",
                  "-p", f"seed:={EVAL_SEED_BASE}"]
    up = ["vla", "up", "--checkpoint", str(checkpoint), "--embodiment", name, "--use-sim-time"]
    # own process groups: stopping one stops its children too (`vla up` runs two nodes)
    processes = [subprocess.Popen(command, start_new_session=True) for command in (simulation, up)]
    recording = Recording()
    client = DemoClient(spec, recording)
    outcomes: list[EpisodeResult] = []
    try:
        client.episode.wait_ready(START_TIMEOUT, "to serve (checkpoint loaded, every input fresh)")
        for index in range(EPISODES):
            wording = "training" if index % 2 == 0 else "held_out"
            outcome = run_episode(client, EVAL_SEED_BASE + index, wording, keep=index == 0)
            recording.keep = False
            outcomes.append(outcome)
            executor = recording.executor
            latency = f"{executor.latency_median * 1e3:.0f} ms" if executor else "n/a"
            state = STATE_NAMES.get(executor.state, "?") if executor else "no status"
            result = f"success after {outcome.time_to_success:.1f} s" if outcome.success else "not done"
            print(f"episode {index + 1}/{EPISODES} {outcome.instruction!r}: {result} (simulated), "
                  f"{outcome.wall_seconds:.0f} s wall | commands received {recording.commands} | executor {state}, "
                  f"chunks {executor.chunks if executor else 0}, inference median {latency}", flush=True)
        write_pictures(spec, recording)
    finally:
        stop_processes(processes[::-1])  # the nodes that command the robot first, then the robot
        client.node.destroy_node()
    if recording.commands == 0:
        raise RuntimeError(f"the simulated {name} received no command: see the node output above")
    return outcomes


def stop_processes(processes: list[subprocess.Popen], timeout: float = 20.0) -> None:
    """Stop each process in turn with SIGTERM (`vla up` passes it on to its nodes); SIGKILL the
    process group of one still running after `timeout` s, and any child left behind: no node
    outlives the demo (an orphan would keep running and hold the caller's output pipe open)."""
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"{' '.join(process.args[:3])} did not stop within {timeout:.0f} s of SIGTERM: killed", flush=True)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is gone: everything stopped by itself
        process.wait()


def write_pictures(spec, recording: Recording) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    if recording.frames:
        path = write_image_strip(recording.frames, OUTPUT / f"{spec.name}_camera_strip.png")
        print(f"wrote {path.relative_to(ROOT)} ({len(recording.frames)} frames kept, 6 shown)")
    if recording.samples:
        times, targets, measured = (np.array(column) for column in zip(*recording.samples))
        path = plot_joint_tracking(times, targets, measured, spec.joint_names,
                                   OUTPUT / f"{spec.name}_joint_tracking.png",
                                   f"{spec.name}, first demo episode: targets sent vs joints measured")
        print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    os.environ.setdefault("ROS_DOMAIN_ID", "42")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    checkpoint, which, embodiments = checkpoint_for(simulated_embodiments())
    print(f"checkpoint: {which}; embodiments in the simulation: {', '.join(embodiments)}; "
          f"{EPISODES} episodes of up to {EPISODE_SECONDS:.0f} s simulated each", flush=True)
    rclpy.init()
    summary = []
    try:
        for name in embodiments:
            outcomes = demo_embodiment(name, checkpoint)
            successes = sum(o.success for o in outcomes)
            summary.append(f"{name}: {successes}/{len(outcomes)} episodes succeeded")
    finally:
        rclpy.try_shutdown()
    print("\ndone: " + "; ".join(summary) + f" ({which.split(':')[0]}); pictures in {OUTPUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
