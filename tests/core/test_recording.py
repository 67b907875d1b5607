"""Episode recording without ROS: bags, metadata, refusals, and recovery of episodes cut by a crash."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from vla_core.recording.episode_metadata import RECORDING_MARKER, EpisodeInfo
from vla_core.recording.episode_recorder import EpisodeRecorder, RecordingRefused, TopicSpec
from vla_core.recording.message_definitions import MessageDefinitions, UnknownMessageType
from vla_core.recording.recovery import WORK_DIR, read_complete_records, recover_episodes

STORE = get_typestore(Stores.ROS2_KILTED)
STRING = "std_msgs/msg/String"
KEYS = {"vla_ros.instruction", "vla_ros.embodiment", "vla_ros.success", "vla_ros.operator_notes",
        "vla_ros.episode_id"}


def text(value: str) -> bytes:
    return bytes(STORE.serialize_cdr(STORE.types[STRING](data=value), STRING))


def read_bag(path: Path) -> tuple[dict, dict[str, list[tuple[int, str]]]]:
    """metadata.yaml's bag information and topic -> [(receive time, text)] as rosbags reads them."""
    messages: dict[str, list[tuple[int, str]]] = {}
    with AnyReader([path]) as reader:
        for connection, stamp, raw in reader.messages():
            messages.setdefault(connection.topic, []).append((stamp, STORE.deserialize_cdr(raw, STRING).data))
    information = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return information, messages


@pytest.fixture
def recorder(tmp_path: Path) -> EpisodeRecorder:
    recorder = EpisodeRecorder(tmp_path / "episodes", "so101", min_free_mib=1.0, backend="rosbags")
    recorder.register_topic(TopicSpec("/chatter", STRING))
    return recorder


def test_a_stopped_episode_is_a_complete_bag_with_the_episode_metadata(recorder: EpisodeRecorder) -> None:
    assert not recorder.write("/chatter", 1, text("before")), "a message outside an episode was written"
    episode = recorder.start("  pick up the red cube ", "first try")
    for i in range(50):
        assert recorder.write("/chatter", 1_000_000_000 + i * 10_000_000, text(f"m{i}"))
    recorder.register_topic(TopicSpec("/late", STRING))  # a publisher that appears mid-episode
    recorder.write("/late", 1_600_000_000, text("late"))
    summary = recorder.stop(True, "clean grasp")

    assert summary.path == episode.path == recorder.output_dir / episode.info.episode_id
    assert (summary.message_count, summary.counts) == (51, {"/chatter": 50, "/late": 1})
    assert summary.duration == pytest.approx(0.6)
    assert not (summary.path / RECORDING_MARKER).exists()
    information, messages = read_bag(summary.path)
    assert [m for _, m in messages["/chatter"]] == [f"m{i}" for i in range(50)]
    assert [t for t, _ in messages["/chatter"]] == [1_000_000_000 + i * 10_000_000 for i in range(50)]
    assert information["custom_data"] == {
        "vla_ros.instruction": "pick up the red cube", "vla_ros.embodiment": "so101", "vla_ros.success": "true",
        "vla_ros.operator_notes": "first try\nclean grasp", "vla_ros.episode_id": episode.info.episode_id}
    assert information["storage_identifier"] == "mcap" and information["message_count"] == 51
    with (summary.path / f"{summary.path.name}.mcap").open("rb") as stream:  # indexed, as Foxglove wants it
        summary_section = make_reader(stream).get_summary()
    assert summary_section is not None and summary_section.statistics.message_count == 51


def test_refusals_say_why_and_discard_deletes(recorder: EpisodeRecorder) -> None:
    with pytest.raises(RecordingRefused, match="nothing to stop"):
        recorder.stop(True)
    with pytest.raises(RecordingRefused, match="instruction is empty"):
        recorder.start("   ")
    first = recorder.start("stack the blocks")
    with pytest.raises(RecordingRefused, match=f"already recording episode {first.info.episode_id}"):
        recorder.start("another")
    recorder.write("/chatter", 5, text("x"))
    recorder.flush()
    assert recorder.discard().episode_id == first.info.episode_id
    assert not first.path.exists() and list(recorder.output_dir.iterdir()) == []
    with pytest.raises(RecordingRefused, match="nothing to discard"):
        recorder.discard()
    greedy = EpisodeRecorder(recorder.output_dir, "so101", min_free_mib=recorder.free_mib() * 10, backend="rosbags")
    with pytest.raises(RecordingRefused, match=r"MiB free in .* below the min_free_disk_mb limit"):
        greedy.start("pick")


def _cut_episode(recorder: EpisodeRecorder, flushed: int, unflushed: int) -> Path:
    """An episode as a SIGKILL leaves it: `flushed` messages flushed, `unflushed` more written, no stop."""
    episode = recorder.start("pick up the cube", "cut")
    for i in range(flushed + unflushed):
        recorder.write("/chatter", 10 + i, text(f"m{i}"))
        if i == flushed - 1:
            recorder.flush()
    snapshot = recorder.output_dir.parent / "snapshot"
    shutil.copytree(episode.path, snapshot)  # what is on disk at the moment of the kill
    recorder.discard()
    shutil.move(snapshot, episode.path)
    return episode.path


def test_recovery_keeps_every_flushed_message_and_marks_the_episode(recorder: EpisodeRecorder) -> None:
    path = _cut_episode(recorder, flushed=40, unflushed=7)
    assert not (path / "metadata.yaml").exists()
    report = recover_episodes(recorder.output_dir)
    assert report.recovered == {path.name: 40} and report.unrecoverable == {}
    information, messages = read_bag(path)
    assert [m for _, m in messages["/chatter"]] == [f"m{i}" for i in range(40)]
    assert set(information["custom_data"]) == KEYS | {"vla_ros.recovered"}
    assert information["custom_data"]["vla_ros.recovered"] == "true"
    assert information["custom_data"]["vla_ros.success"] == "false"
    assert sorted(p.name for p in recorder.output_dir.iterdir()) == [path.name], "work files left behind"
    assert recover_episodes(recorder.output_dir).recovered == {}, "a recovered episode was recovered again"


def test_recovery_of_a_file_cut_at_any_byte_keeps_only_whole_chunks(recorder: EpisodeRecorder) -> None:
    """Two flushed chunks (20 + 20 messages): every cut keeps 0, 20 or 40 of them, never a broken one."""
    episode = recorder.start("pick")
    for i in range(40):
        recorder.write("/chatter", 10 + i, text(f"m{i}"))
        if i in (19, 39):
            recorder.flush()
    mcap = episode.path / f"{episode.path.name}.mcap"
    data = mcap.read_bytes()
    recorder.discard()
    kept_by_cut = {}
    for cut in range(0, len(data) + 1, 37):
        mcap.parent.mkdir(parents=True, exist_ok=True)
        mcap.write_bytes(data[:cut])
        records = read_complete_records(mcap)
        kept_by_cut[cut] = [m.data for m in records.messages]
    assert {len(kept) for kept in kept_by_cut.values()} == {0, 20, 40}
    for kept in kept_by_cut.values():
        assert kept == [text(f"m{i}") for i in range(len(kept))]


def test_unrecoverable_episodes_are_renamed_and_named(recorder: EpisodeRecorder) -> None:
    garbage = recorder.output_dir / "episode_garbage"
    garbage.mkdir()
    (garbage / "episode_garbage.mcap").write_bytes(b"not an mcap file at all")
    (garbage / RECORDING_MARKER).write_text(json.dumps({"episode_id": "episode_garbage", "instruction": "x",
                                                         "embodiment": "so101"}))
    no_marker = recorder.output_dir / "episode_bad_marker"
    no_marker.mkdir()
    (no_marker / RECORDING_MARKER).write_text("{not json")
    report = recover_episodes(recorder.output_dir)
    assert report.recovered == {}
    assert set(report.unrecoverable) == {f"{garbage}.unrecoverable", f"{no_marker}.unrecoverable"}
    assert "no complete message" in report.unrecoverable[f"{garbage}.unrecoverable"]
    assert "not a readable recording marker" in report.unrecoverable[f"{no_marker}.unrecoverable"]
    assert not garbage.exists() and Path(f"{garbage}.unrecoverable", "episode_garbage.mcap").is_file()


def test_a_crash_during_the_recovery_swap_is_finished_on_the_next_start(recorder: EpisodeRecorder) -> None:
    path = _cut_episode(recorder, flushed=10, unflushed=0)
    work = recorder.output_dir / WORK_DIR
    work.mkdir()
    path.replace(work / f"{path.name}.partial")  # the cut episode moved aside, the new one not yet in place
    assert recover_episodes(recorder.output_dir).recovered == {path.name: 10}
    information, messages = read_bag(path)
    assert [m for _, m in messages["/chatter"]] == [f"m{i}" for i in range(10)]
    assert information["custom_data"]["vla_ros.recovered"] == "true" and not (path / RECORDING_MARKER).exists()


def test_message_definitions_come_from_the_type_store_or_installed_msg_files(tmp_path: Path) -> None:
    share = tmp_path / "share" / "robot_msgs" / "msg"
    share.mkdir(parents=True)
    (share / "Grip.msg").write_text("std_msgs/Header header\nrobot_msgs/Finger[2] fingers\n")
    (share / "Finger.msg").write_text("float64 position\n")
    definitions = MessageDefinitions([tmp_path])
    msgdef, rihs01 = definitions.definition("robot_msgs/msg/Grip")
    assert "robot_msgs/Finger[2] fingers" in msgdef and "MSG: robot_msgs/Finger" in msgdef
    assert rihs01.startswith("RIHS01_")
    assert definitions.definition("sensor_msgs/msg/Image")[1] == STORE.hash_rihs01("sensor_msgs/msg/Image")
    with pytest.raises(UnknownMessageType, match=r"'robot_msgs/msg/Missing'.*share/robot_msgs/msg/Missing.msg"):
        definitions.definition("robot_msgs/msg/Missing")
    with pytest.raises(UnknownMessageType, match="expected 'package/msg/Name'"):
        definitions.definition("nonsense")


def test_episode_metadata_keys_are_the_converters() -> None:
    info = EpisodeInfo("episode_1", "pick", "so101", "a")
    assert set(info.custom_data()) == KEYS
    stopped = info.stopped(True, " b ")
    assert stopped.custom_data()["vla_ros.operator_notes"] == "a\nb" and stopped.custom_data()["vla_ros.success"] == "true"
    assert info.stopped(False, "").operator_notes == "a"


def test_rosbag2_py_is_refused_by_name_and_auto_is_the_rosbags_writer_even_where_rosbag2_py_imports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rosbag2_py drops the recorded QoS and cannot flush: asking for it is an error with that reason,
    never a silent switch, and an importable rosbag2_py changes nothing."""
    import sys
    import types

    from vla_core.recording.bag_writer import RosbagsBagWriter, open_bag_writer, writer_problem

    with pytest.raises(ValueError, match=r"bag writer 'rosbag2_py': removed: it drops the recorded QoS and cannot "
                                         r"flush, so a crash could lose acknowledged episodes"):
        open_bag_writer(tmp_path / "refused", MessageDefinitions(), "rosbag2_py")
    assert not (tmp_path / "refused").exists()
    assert writer_problem("sqlite") == "expected one of ['auto', 'rosbags']"
    monkeypatch.setitem(sys.modules, "rosbag2_py", types.ModuleType("rosbag2_py"))  # "installed"
    for name in ("auto", "rosbags"):
        assert writer_problem(name) is None
        writer = open_bag_writer(tmp_path / name, MessageDefinitions(), name)
        try:
            assert isinstance(writer, RosbagsBagWriter)
        finally:
            writer.abort()


def test_a_write_never_waits_for_the_disk_while_the_episode_is_flushed(recorder: EpisodeRecorder,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fsync of a flush waits for the disk; camera messages written meanwhile must not."""
    import os
    import threading

    recorder.start("pick up the cube")
    syncing, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(descriptor: int) -> None:
        syncing.set()
        release.wait(10.0)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    flusher = threading.Thread(target=recorder.flush)
    flusher.start()
    assert syncing.wait(5.0)
    written = threading.Event()
    threading.Thread(target=lambda: (recorder.write("/chatter", 1, b"\0" * 8), written.set()),
                     daemon=True).start()
    try:
        assert written.wait(2.0), "a write waited for the flush's fsync"
    finally:
        release.set()
        flusher.join(10.0)
    monkeypatch.setattr(os, "fsync", real_fsync)
    summary = recorder.stop(True)
    assert summary.message_count == 1
