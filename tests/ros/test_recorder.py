"""The recorder node as its own process over DDS, recording a publisher peer's countable topics.

The peer (peers/recording_source.py) publishes tick n on every SO-101 topic with frame_id = n,
so each bag can be checked for exactly which ticks it holds: none missing in between, values
and stamps as published, counts as metadata.yaml says. A recorder killed with SIGKILL must leave
every stopped episode untouched and the cut one recovered on its next start. The slow end-to-end
case records the MuJoCo scene driven by the scripted leader arm on simulated time, converts the
bag with `vla convert` and compares the dataset's frames with what the simulation published.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticStatus
from mcap.reader import make_reader
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory
from vla_core.data.lerobot_v3 import load_episodes
from vla_core.images import resize_rgb
from vla_core.recording.episode_metadata import RECORDING_MARKER

from vla_msgs.srv import DiscardEpisode, ResetScene, StartEpisode, StopEpisode

from .conftest import PEERS

pytestmark = [pytest.mark.ros]
RATE = 30.0
IMAGE_SIZE = 32
COMMAND_TOPIC = "/joint_trajectory_controller/joint_trajectory"
HEADER_TOPICS = ("/front/image_raw", "/wrist/image_raw", "/joint_states", COMMAND_TOPIC)
ALL_TOPICS = (*HEADER_TOPICS, "/operator_note")
KEYS = {"vla_ros.instruction", "vla_ros.embodiment", "vla_ros.success", "vla_ros.operator_notes",
        "vla_ros.episode_id"}


# ---- processes and services ------------------------------------------------------------------
def start_source(ros_process):
    return ros_process(str(PEERS / "recording_source.py"), "--rate", str(RATE), "--image-size", str(IMAGE_SIZE))


def start_recorder(ros_process, output: Path, *params: str, namespace: str = ""):
    args = ["-p", f"output_dir:={output}", "-p", "extra_topics:=['operator_note']", "-p", "min_free_disk_mb:=1.0",
            "-p", "status_rate_hz:=5.0", *[x for p in params for x in ("-p", p)]]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    return ros_process("-m", "vla_policy_node.recorder_node", "--ros-args", *args, ready_line=None)


class StatusWatch:
    def __init__(self, node, topic: str = "/vla_recorder/status") -> None:
        self.last: DiagnosticStatus | None = None
        node.create_subscription(DiagnosticStatus, topic, self._on, 10)

    def _on(self, msg: DiagnosticStatus) -> None:
        self.last = msg

    def values(self) -> dict[str, str]:
        return {kv.key: kv.value for kv in self.last.values} if self.last else {}


def wait_until_subscribed(node, watch: StatusWatch, recorder) -> None:
    """The recorder is up and subscribed to every topic (its status names none as waiting)."""
    ready = node.spin_until(lambda: watch.last is not None and watch.values()["waiting_for_publishers"] == "", 30.0)
    assert ready, "the recorder did not subscribe to every topic:\n" + "\n".join(recorder.lines)


def call(node, srv_type, name: str, request, timeout: float = 10.0):
    client = node.create_client(srv_type, name)
    assert node.spin_until(client.service_is_ready, 20.0), f"service {name} is not available"
    future = client.call_async(request)
    assert node.spin_until(future.done, timeout), f"{name} did not answer within {timeout} s"
    node.destroy_client(client)
    return future.result()


def wait_until_recorded(node, watch: StatusWatch, episode_id: str, ticks: int, notes: int = 0,
                        timeout: float = 30.0) -> None:
    """Wait on the recorder's own status until the episode holds `ticks` messages of every header
    topic (and `notes` operator notes), rather than sleeping and hoping that was enough."""
    def recorded() -> bool:
        values = watch.values()
        return (values.get("episode_id") == episode_id
                and all(int(values.get(f"count {topic}", 0)) >= ticks for topic in HEADER_TOPICS)
                and int(values.get("count /operator_note", 0)) >= notes)

    assert node.spin_until(recorded, timeout), f"{episode_id}: not {ticks} ticks within {timeout} s: {watch.values()}"


def record_episode(node, ticks: int, instruction: str, success: bool, notes: str = ""):
    watch = StatusWatch(node)
    started = call(node, StartEpisode, "/vla_recorder/start_episode",
                   StartEpisode.Request(instruction=instruction, operator_notes=notes))
    assert started.success, started.message
    wait_until_recorded(node, watch, started.episode_id, ticks, notes=1)
    stopped = call(node, StopEpisode, "/vla_recorder/stop_episode", StopEpisode.Request(task_success=success))
    assert stopped.success, stopped.message
    assert (stopped.episode_id, stopped.bag_path) == (started.episode_id, started.bag_path)
    return stopped


# ---- reading bags ------------------------------------------------------------------------------
def read_bag(path: Path) -> tuple[dict, dict[str, list]]:
    """metadata.yaml's bag information and topic -> [(receive time ns, message)] read by rosbags."""
    messages: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for connection, stamp, raw in reader.messages():
            messages.setdefault(connection.topic, []).append((stamp, reader.deserialize(raw, connection.msgtype)))
    return yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"], messages


def check_recording(path: Path, min_ticks: int) -> dict[str, list[int]]:
    """Every topic holds an unbroken run of ticks with the published values; returns the ticks."""
    information, messages = read_bag(path)
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in information["topics_with_message_count"]}
    assert counts == {topic: len(messages.get(topic, [])) for topic in ALL_TOPICS}
    ticks: dict[str, list[int]] = {}
    for topic in HEADER_TOPICS:
        ticks[topic] = [int(msg.header.frame_id) for _, msg in messages[topic]]
        first = ticks[topic][0]
        assert ticks[topic] == list(range(first, first + len(ticks[topic]))), f"{topic}: ticks missing or repeated"
        assert len(ticks[topic]) >= min_ticks, f"{topic}: only {len(ticks[topic])} ticks recorded"
        for receive_time, msg in messages[topic]:
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            assert 0 <= receive_time - stamp < 0.5e9, f"{topic}: receive time {receive_time} vs stamp {stamp}"
    for _, image in messages["/front/image_raw"] + messages["/wrist/image_raw"]:
        n = int(image.header.frame_id)
        assert (image.width, image.height, image.encoding) == (IMAGE_SIZE, IMAGE_SIZE, "rgb8")
        assert np.all(image.data == n % 256) and image.data.size == IMAGE_SIZE * IMAGE_SIZE * 3
    for _, joints in messages["/joint_states"]:
        np.testing.assert_allclose(joints.position, int(joints.header.frame_id) / 1000 + np.arange(6))
    for _, command in messages[COMMAND_TOPIC]:
        np.testing.assert_allclose(command.points[0].positions, int(command.header.frame_id) / 1000 - np.arange(6))
    notes = [int(msg.data.removeprefix("note ")) for _, msg in messages["/operator_note"]]
    assert notes == list(range(notes[0], notes[0] + len(notes)))
    spans = [len(t) for t in ticks.values()]
    assert max(spans) - min(spans) <= 2, f"topics recorded over different spans: {spans}"
    with (path / f"{path.name}.mcap").open("rb") as stream:
        summary = make_reader(stream).get_summary()
    assert summary is not None and summary.statistics.message_count == information["message_count"]
    return ticks


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


# ---- tests -----------------------------------------------------------------------------------
def test_start_stop_records_every_message_published_meanwhile(ros_node, ros_process, tmp_path) -> None:
    """Started through `vla record` with config/record.yaml, as an operator would."""
    start_source(ros_process)
    recorder = ros_process("-m", "vla_core.cli", "record", "--output-dir", str(tmp_path),
                           "--param", "extra_topics:=['operator_note']", "--param", "min_free_disk_mb:=1.0",
                           "--param", "status_rate_hz:=5.0", ready_line=None)
    wait_until_subscribed(ros_node, StatusWatch(ros_node), recorder)

    stopped = record_episode(ros_node, int(2.0 * RATE), "pick up the red cube", True, "first try")
    path = Path(stopped.bag_path)
    assert path.parent == tmp_path and path.name == stopped.episode_id
    assert not (path / RECORDING_MARKER).exists()
    ticks = check_recording(path, min_ticks=int(2.0 * RATE * 0.6))
    information, _ = read_bag(path)
    assert stopped.message_count == information["message_count"] == sum(map(len, ticks.values())) + len(
        read_bag(path)[1]["/operator_note"])
    assert stopped.duration == pytest.approx(information["duration"]["nanoseconds"] / 1e9)
    assert 1.5 < stopped.duration < 3.0
    offered = {t["topic_metadata"]["name"]: [(q["reliability"], q["durability"]) for q in
                                             t["topic_metadata"]["offered_qos_profiles"]]
               for t in information["topics_with_message_count"]}
    assert offered == {topic: [("reliable", "volatile")] for topic in ALL_TOPICS}, "not the QoS the source offered"
    assert information["custom_data"] == {
        "vla_ros.instruction": "pick up the red cube", "vla_ros.embodiment": "so101", "vla_ros.success": "true",
        "vla_ros.operator_notes": "first try", "vla_ros.episode_id": stopped.episode_id}
    assert any(f"stopped episode {stopped.episode_id}" in line and "/joint_states:" in line
               for line in recorder.lines), "no log line with the message counts"


@pytest.mark.slow
def test_refusals_discard_and_bad_parameters(ros_node, ros_process, tmp_path) -> None:
    start_source(ros_process)
    recorder = start_recorder(ros_process, tmp_path / "episodes")
    watch = StatusWatch(ros_node)
    wait_until_subscribed(ros_node, watch, recorder)
    first = call(ros_node, StartEpisode, "/vla_recorder/start_episode", StartEpisode.Request(instruction="stack"))
    assert first.success
    again = call(ros_node, StartEpisode, "/vla_recorder/start_episode", StartEpisode.Request(instruction="stack"))
    assert not again.success and f"already recording episode {first.episode_id}" in again.message
    wait_until_recorded(ros_node, watch, first.episode_id, ticks=1)
    assert Path(first.bag_path).is_dir()
    discarded = call(ros_node, DiscardEpisode, "/vla_recorder/discard_episode", DiscardEpisode.Request())
    assert discarded.success and discarded.episode_id == first.episode_id
    assert not Path(first.bag_path).exists() and list((tmp_path / "episodes").iterdir()) == []
    nothing = call(ros_node, StopEpisode, "/vla_recorder/stop_episode", StopEpisode.Request())
    assert not nothing.success and "no episode is being recorded" in nothing.message

    # Ctrl-C while recording closes the episode as a complete bag, unsuccessful, and says so
    last = call(ros_node, StartEpisode, "/vla_recorder/start_episode", StartEpisode.Request(instruction="stack"))
    wait_until_recorded(ros_node, watch, last.episode_id, ticks=5)
    assert recorder.stop() == 0
    information, _ = read_bag(Path(last.bag_path))
    assert information["custom_data"]["vla_ros.success"] == "false" and information["message_count"] > 0
    assert "shutdown" in information["custom_data"]["vla_ros.operator_notes"]

    # a second recorder in its own namespace, on a disk "too small" for it
    start_recorder(ros_process, tmp_path / "robot2", "min_free_disk_mb:=1000000000.0", namespace="/robot2")
    refused = call(ros_node, StartEpisode, "/robot2/vla_recorder/start_episode",
                   StartEpisode.Request(instruction="stack"))
    assert not refused.success and "below the min_free_disk_mb limit" in refused.message
    assert list((tmp_path / "robot2").iterdir()) == []

    bad = start_recorder(ros_process, tmp_path / "bad", "storage:=sqlite3", "flush_interval:=0.0")
    assert bad.proc.wait(30) == 2
    output = "\n".join(bad.lines)
    assert "parameter 'storage' = 'sqlite3'" in output and "parameter 'flush_interval' = 0.0" in output


@pytest.mark.slow
def test_a_killed_recorder_loses_nothing_it_acknowledged(ros_node, ros_process, tmp_path) -> None:
    start_source(ros_process)
    recorder = start_recorder(ros_process, tmp_path, "flush_interval:=0.2")
    wait_until_subscribed(ros_node, StatusWatch(ros_node), recorder)
    done = record_episode(ros_node, int(RATE), "pick up the blue cube", True)
    before = digest(Path(done.bag_path))

    cut = call(ros_node, StartEpisode, "/vla_recorder/start_episode",
               StartEpisode.Request(instruction="pick up the green cube", operator_notes="will be cut"))
    # a second more than the recovered bag must hold: the kill may lose what was not flushed yet
    wait_until_recorded(ros_node, StatusWatch(ros_node), cut.episode_id, ticks=int(2.0 * RATE * 0.5) + int(RATE),
                        notes=1)
    killed_at = time.time_ns()
    os.killpg(recorder.proc.pid, signal.SIGKILL)
    recorder.proc.wait()
    assert (Path(cut.bag_path) / RECORDING_MARKER).is_file() and not (Path(cut.bag_path) / "metadata.yaml").exists()

    broken = tmp_path / "episode_broken"  # an episode with nothing readable: must be reported, not skipped
    broken.mkdir()
    (broken / "episode_broken.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x06" * 5)
    (broken / RECORDING_MARKER).write_text(json.dumps({"episode_id": "episode_broken", "instruction": "x",
                                                       "embodiment": "so101"}))

    watch = StatusWatch(ros_node)
    restarted = start_recorder(ros_process, tmp_path)
    assert ros_node.spin_until(lambda: watch.last is not None, 30.0), "\n".join(restarted.lines)
    assert digest(Path(done.bag_path)) == before, "a stopped episode changed after the crash"
    assert f"unrecoverable {broken}.unrecoverable" in watch.values()
    assert watch.last.level == DiagnosticStatus.ERROR
    log = "\n".join(restarted.lines)
    assert f"recovered episode {cut.episode_id}" in log and "episode_broken.unrecoverable" in log

    path = Path(cut.bag_path)
    check_recording(path, min_ticks=int(2.0 * RATE * 0.5))
    information, messages = read_bag(path)
    assert information["custom_data"] == {
        "vla_ros.instruction": "pick up the green cube", "vla_ros.embodiment": "so101", "vla_ros.success": "false",
        "vla_ros.operator_notes": "will be cut", "vla_ros.episode_id": cut.episode_id, "vla_ros.recovered": "true"}
    last = max(stamp for topic in messages.values() for stamp, _ in topic)
    assert (killed_at - last) / 1e9 < 1.0, f"the kill lost the last {(killed_at - last) / 1e9:.2f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(done.bag_path).name, path.name, "episode_broken.unrecoverable"])


class Published:
    """What the simulation and the teleoperator published, by header stamp (ns), as this test saw it."""

    def __init__(self, node) -> None:
        self.joints: dict[int, np.ndarray] = {}
        self.images: dict[int, np.ndarray] = {}
        self.commands: list[np.ndarray] = []
        node.create_subscription(JointState, "joint_states", self._on_joints, qos_profile_sensor_data)
        node.create_subscription(Image, "front/image_raw", self._on_image, qos_profile_sensor_data)
        node.create_subscription(JointTrajectory, "joint_trajectory_controller/joint_trajectory", self._on_command,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))

    @staticmethod
    def _ns(msg) -> int:
        return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

    def clear(self) -> None:
        self.joints.clear(), self.images.clear(), self.commands.clear()

    def _on_joints(self, msg: JointState) -> None:
        self.joints[self._ns(msg)] = np.array(msg.position)

    def _on_image(self, msg: Image) -> None:
        self.images[self._ns(msg)] = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, 3)

    def _on_command(self, msg: JointTrajectory) -> None:
        self.commands.append(np.array(msg.points[0].positions))


@pytest.mark.slow
def test_a_recorded_simulation_episode_converts_to_what_was_published(ros_node, ros_process, tmp_path) -> None:
    """The MuJoCo scene and the scripted leader arm over DDS, recorded on sim time, then `vla convert`."""
    fps = 10.0
    ros_process("-m", "vla_sim.sim_node", "--ros-args", "-p", "image_size:=64", "-p", f"camera_rate_hz:={fps}",
                "-p", "real_time_factor:=0.5")
    ros_process("-m", "vla_sim.scripted_teleop", "--ros-args", "-p", "use_sim_time:=true")
    recorder = start_recorder(ros_process, tmp_path / "bags", "use_sim_time:=true")
    watch = StatusWatch(ros_node)
    # the wanted topics also include operator_note, which nobody publishes here
    assert ros_node.spin_until(lambda: watch.values().get("waiting_for_publishers") == "/operator_note", 40.0), \
        "\n".join(recorder.lines)
    published = Published(ros_node)
    reset = call(ros_node, ResetScene, "reset", ResetScene.Request(seed=3))
    assert reset.success, reset.message
    published.clear()
    started = call(ros_node, StartEpisode, "/vla_recorder/start_episode",
                   StartEpisode.Request(instruction=reset.instruction))
    assert ros_node.spin_until(lambda: published.joints, 10.0), "no joint states after the start"
    first_stamp = max(published.joints)
    assert ros_node.spin_until(lambda: published.joints and max(published.joints) > first_stamp + 3e9, 60.0), \
        "the simulation did not advance 3 s"
    stopped = call(ros_node, StopEpisode, "/vla_recorder/stop_episode", StopEpisode.Request(task_success=True))
    assert stopped.success and stopped.episode_id == started.episode_id
    assert 2.5 < stopped.duration < 10.0, f"{stopped.duration} s of simulated receive time"
    _, recorded = read_bag(Path(started.bag_path))
    header_ns = {topic: [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in recorded[topic]]
                 for topic in ("/front/image_raw", "/wrist/image_raw", "/joint_states")}
    # frames run while every camera and the joints overlap and a command has arrived (the leader arm
    # starts moving a moment after the reset); a JointTrajectory's zero stamp means its receive time
    first_command = min(stamp for stamp, _ in recorded[COMMAND_TOPIC])
    start = max(max(min(s) for s in header_ns.values()), first_command)
    span = (min(max(s) for s in header_ns.values()) - start) / 1e9

    dataset = tmp_path / "dataset"
    result = subprocess.run([sys.executable, "-m", "vla_core.cli", "convert", started.bag_path, "--output",
                             str(dataset), "--embodiment", "so101", "--fps", str(fps), "--workers", "1",
                             "--no-progress"], capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    [episode] = load_episodes(dataset)
    assert episode.task == reset.instruction and episode.success is True
    frames = len(episode)
    assert int(span * fps) - 2 <= frames <= int(span * fps) + 1, f"{frames} frames from {span:.2f} s at {fps} Hz"
    np.testing.assert_allclose(np.diff(episode.timestamps), 1 / fps, atol=1e-6)

    # every state row is the joint state published nearest its frame time; the frame times are found
    # from the rows that match exactly one published state (the arm moving), 1/fps apart
    stamps = np.array(sorted(published.joints))
    unique = {}
    for k, row in enumerate(episode.state):
        hits = [t for t in stamps if np.allclose(published.joints[t], row, atol=1e-5)]
        if len(hits) == 1:
            unique[k] = hits[0]
    assert len(unique) >= frames // 2, f"only {len(unique)} of {frames} state rows match one published state"
    offsets = np.array([t - k * 1e9 / fps for k, t in unique.items()])
    start_ns = np.median(offsets)
    assert np.all(np.abs(offsets - start_ns) < 0.011e9), "matched states are not 1/fps apart"
    checked = []
    for k, row in enumerate(episode.state):
        frame_ns = start_ns + k * 1e9 / fps
        nearest = stamps[np.argmin(np.abs(stamps - frame_ns))]
        if abs(nearest - frame_ns) < 0.006e9:  # this test saw the message the converter picked
            np.testing.assert_allclose(row, published.joints[nearest], atol=1e-5, err_msg=f"frame {k}")
            checked.append(k)
    assert len(checked) >= 0.9 * frames, f"only {len(checked)} of {frames} frames checked against published states"
    assert np.ptp(episode.state[:, 0]) > 0.01, "the arm did not move while recorded"

    # every action row is a command the leader arm sent
    commands = np.array(published.commands)
    hits = [np.any(np.all(np.abs(commands - row) < 1e-5, axis=1)) for row in episode.action]
    assert np.mean(hits) >= 0.9, f"only {np.sum(hits)} of {frames} action rows are commands that were sent"

    # images: the published frame nearest each matched stamp, resized as the converter does, up to video loss
    image_stamps = np.array(sorted(published.images))
    video = episode.images["front"]
    errors = []
    for k in checked:
        frame_ns = start_ns + k * 1e9 / fps
        source = published.images[int(image_stamps[np.argmin(np.abs(image_stamps - frame_ns))])]
        expected = resize_rgb(source, video.shape[2], video.shape[1]).astype(float)
        errors.append(np.abs(video[k].astype(float) - expected).mean())
    # (measured: about 1.4 grey levels of video loss; frames from the episode's other end differ by over 5)
    assert max(errors) < 3.0, f"decoded frames differ from the published ones by up to {max(errors):.1f}"
