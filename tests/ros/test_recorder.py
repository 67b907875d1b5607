"""The recorder node as its own process over DDS, recording a publisher peer's countable topics.

The peer (peers/recording_source.py) publishes tick n on every SO-101 topic with frame_id = n,
so each bag can be checked for exactly which ticks it holds: none missing in between, values
and stamps as published, counts as metadata.yaml says. A recorder killed with SIGKILL must leave
every stopped episode untouched and the cut one recovered on its next start.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticStatus
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader

from vla_core.recording.episode_metadata import RECORDING_MARKER
from vla_msgs.srv import DiscardEpisode, StartEpisode, StopEpisode

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


def record_episode(node, seconds: float, instruction: str, success: bool, notes: str = ""):
    started = call(node, StartEpisode, "/vla_recorder/start_episode",
                   StartEpisode.Request(instruction=instruction, operator_notes=notes))
    assert started.success, started.message
    node.spin_until(lambda: False, seconds)
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
    start_source(ros_process)
    recorder = start_recorder(ros_process, tmp_path)
    wait_until_subscribed(ros_node, StatusWatch(ros_node), recorder)

    stopped = record_episode(ros_node, 2.0, "pick up the red cube", True, "first try")
    path = Path(stopped.bag_path)
    assert path.parent == tmp_path and path.name == stopped.episode_id
    assert not (path / RECORDING_MARKER).exists()
    ticks = check_recording(path, min_ticks=int(2.0 * RATE * 0.6))
    information, _ = read_bag(path)
    assert stopped.message_count == information["message_count"] == sum(map(len, ticks.values())) + len(
        read_bag(path)[1]["/operator_note"])
    assert stopped.duration == pytest.approx(information["duration"]["nanoseconds"] / 1e9)
    assert 1.5 < stopped.duration < 3.0
    assert information["custom_data"] == {
        "vla_ros.instruction": "pick up the red cube", "vla_ros.embodiment": "so101", "vla_ros.success": "true",
        "vla_ros.operator_notes": "first try", "vla_ros.episode_id": stopped.episode_id}
    assert any(f"stopped episode {stopped.episode_id}" in line and "/joint_states:" in line
               for line in recorder.lines), "no log line with the message counts"


def test_refusals_discard_and_bad_parameters(ros_node, ros_process, tmp_path) -> None:
    start_source(ros_process)
    recorder = start_recorder(ros_process, tmp_path / "episodes")
    wait_until_subscribed(ros_node, StatusWatch(ros_node), recorder)
    first = call(ros_node, StartEpisode, "/vla_recorder/start_episode", StartEpisode.Request(instruction="stack"))
    assert first.success
    again = call(ros_node, StartEpisode, "/vla_recorder/start_episode", StartEpisode.Request(instruction="stack"))
    assert not again.success and f"already recording episode {first.episode_id}" in again.message
    ros_node.spin_until(lambda: False, 0.5)
    assert Path(first.bag_path).is_dir()
    discarded = call(ros_node, DiscardEpisode, "/vla_recorder/discard_episode", DiscardEpisode.Request())
    assert discarded.success and discarded.episode_id == first.episode_id
    assert not Path(first.bag_path).exists() and list((tmp_path / "episodes").iterdir()) == []
    nothing = call(ros_node, StopEpisode, "/vla_recorder/stop_episode", StopEpisode.Request())
    assert not nothing.success and "no episode is being recorded" in nothing.message

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
    done = record_episode(ros_node, 1.0, "pick up the blue cube", True)
    before = digest(Path(done.bag_path))

    cut = call(ros_node, StartEpisode, "/vla_recorder/start_episode",
               StartEpisode.Request(instruction="pick up the green cube", operator_notes="will be cut"))
    ros_node.spin_until(lambda: False, 2.0)
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
