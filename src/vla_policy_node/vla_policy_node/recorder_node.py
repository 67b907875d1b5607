"""The recorder node: teleoperated demonstrations to rosbag2 (MCAP), one bag directory per episode.

It subscribes to the topics the embodiment profile names (cameras raw or compressed, joint
states, the teleoperator's command topic) and to `extra_topics`, as soon as each has a
publisher, with `raw=True`: messages are written as the serialized CDR bytes that arrived,
stamped with their receive time on the node's clock (so `use_sim_time` applies), as
`ros2 bag record` does. The episode logic lives in vla_core.recording; this node only
subscribes, serves and reports.

Interfaces (relative to the node's namespace):
- `~/start_episode` (vla_msgs/StartEpisode): opens `<output_dir>/<episode_id>/`; refused while
  recording, with an empty instruction, or with less free disk than `min_free_disk_mb`.
- `~/stop_episode` (vla_msgs/StopEpisode): closes the bag; when it answers success the
  episode, its metadata.yaml and the directory entry are fsynced.
- `~/discard_episode` (vla_msgs/DiscardEpisode): deletes the open episode.
- `~/status` (diagnostic_msgs/DiagnosticStatus) and `/diagnostics`: state, message counts per
  topic, free disk, topics still without a publisher, episodes that could not be recovered.

At start-up, episodes a crash left open are rebuilt from their flushed chunks (see
vla_core.recording.recovery) before anything else; those that cannot be are named in the log
and in the status. While recording, the open chunk is flushed every `flush_interval` seconds.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from vla_core.embodiment import load_embodiment
from vla_core.recording.bag_writer import writer_problem
from vla_core.recording.episode_recorder import EpisodeRecorder, RecordingRefused, TopicSpec
from vla_core.recording.message_definitions import UnknownMessageType
from vla_core.recording.recovery import recover_episodes

from vla_msgs.srv import DiscardEpisode, StartEpisode, StopEpisode

from .node_main import run_node
from .parameters import Param, declare_and_read, in_range, non_empty, one_of
from .recorder_topics import message_class, offered_qos, parse_extra_topics, profile_topics, subscription_qos
from .status import CauseLog

Response = TypeVar("Response")

PARAMETERS = (
    Param("embodiment", "so101", "Embodiment profile (name from config/embodiments or a YAML path): its cameras, "
                                 "joint state topic and command topic are recorded.", non_empty),
    Param("output_dir", "~/vla_episodes", "Directory that receives one rosbag2 directory per episode.", non_empty),
    Param("extra_topics", [], "More topics to record, as 'topic' (type from its publishers) or "
                              "'topic:package/msg/Type'."),
    Param("image_transport", "raw", "'raw' records sensor_msgs/Image on each camera topic, 'compressed' "
                                    "CompressedImage on <topic>/compressed.", one_of("raw", "compressed")),
    Param("storage", "mcap", "rosbag2 storage format of the episodes (MCAP only: it survives a crash "
                             "chunk by chunk, and Foxglove reads it).", one_of("mcap")),
    Param("bag_writer", "auto", "Bag writer: 'auto' or 'rosbags', the same writer on every install (keeps each "
                                "topic's offered QoS; flushed and fsynced every flush_interval). 'rosbag2_py' "
                                "was removed and is refused.", writer_problem),
    Param("min_free_disk_mb", 1024.0, "A start is refused when the output directory's disk has less free "
                                      "space than this (MiB).", in_range(0.0, 1e9)),
    Param("flush_interval", 0.2, "Seconds between flushes of the open chunk to disk: the most a crash can lose.",
          in_range(0.01, 10.0)),
    Param("status_rate_hz", 1.0, "Rate of ~/status and /diagnostics.", in_range(0.1, 50.0)),
    Param("log_interval", 5.0, "Seconds between log lines with message counts while recording.",
          in_range(0.5, 3600.0)),
)


class RecorderNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("vla_recorder", **kwargs)
        self.params = declare_and_read(self, PARAMETERS)
        spec = load_embodiment(self.params["embodiment"])
        wanted = {**profile_topics(spec, self.params["image_transport"]),
                  **parse_extra_topics(self.params["extra_topics"])}
        self._wanted = {self.resolve_topic_name(topic): msgtype for topic, msgtype in wanted.items()}
        self._subscribed: dict[str, str] = {}  # topic -> type
        self._refused_topics: dict[str, str] = {}  # topic -> why it is not recorded
        self._causes = CauseLog(self.get_logger())  # exceptions caught at the callback boundaries
        self.recorder = EpisodeRecorder(Path(self.params["output_dir"]), spec.name,
                                        self.params["min_free_disk_mb"], self.params["bag_writer"])
        self._recover()
        self.create_service(StartEpisode, "~/start_episode", self._answer("started", self._on_start))
        self.create_service(StopEpisode, "~/stop_episode", self._answer("stopped", self._on_stop))
        self.create_service(DiscardEpisode, "~/discard_episode", self._answer("discarded", self._on_discard))
        self._status_pub = self.create_publisher(DiagnosticStatus, "~/status", 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        guard = self._causes.guard  # an exception escaping a callback would end the node mid-episode
        self.create_timer(0.5, guard("discovery_failed", self._discover))
        self.create_timer(1.0 / self.params["status_rate_hz"], guard("status_failed", self._publish_status))
        self.create_timer(self.params["log_interval"], guard("log_failed", self._log_counts))
        self._on_message_guarded = guard("message_callback_failed", self._on_message)
        self._discover()
        # flushing waits for the disk (fsync): on its own thread, not the executor's, which takes the cameras
        self._flush_stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="vla_recorder_flush", daemon=True)
        self._flusher.start()
        self.get_logger().info(f"recording {spec.name} into {self.recorder.output_dir}: "
                               f"{', '.join(sorted(self._wanted))}")

    # ---- start-up -------------------------------------------------------------------------
    def _recover(self) -> None:
        report = recover_episodes(self.recorder.output_dir, self.recorder.definitions)
        for episode_id, count in report.recovered.items():
            self.get_logger().warning(f"recovered episode {episode_id} cut by a crash: {count} messages kept, "
                                      "marked vla_ros.recovered")
        for directory, why in report.unrecoverable.items():
            self.get_logger().error(f"episode could not be recovered, left as {directory}: {why}")
        self._unrecoverable = report.unrecoverable

    def _discover(self) -> None:
        """Subscribe to every wanted topic that has publishers now (types and QoS from them)."""
        for topic, wanted_type in self._wanted.items():
            if topic in self._subscribed or topic in self._refused_topics:
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            offered = {p.topic_type for p in publishers}
            msgtype = wanted_type or min(offered)
            try:
                if msgtype not in offered:
                    raise ValueError(f"expected type {msgtype}, its publishers offer {sorted(offered)}")
                cls = message_class(msgtype)
                self.recorder.register_topic(TopicSpec(topic, msgtype, offered_qos(publishers)))
            except (ValueError, UnknownMessageType) as error:
                self._refused_topics[topic] = str(error)
                self.get_logger().error(f"not recording {topic}: {error}")
                continue
            self.create_subscription(cls, topic, lambda data, topic=topic: self._on_message_guarded(topic, data),
                                     subscription_qos(publishers), raw=True)
            self._subscribed[topic] = msgtype
            self.get_logger().info(f"subscribed to {topic} ({msgtype})")

    # ---- messages -------------------------------------------------------------------------
    def _on_message(self, topic: str, data: bytes) -> None:
        if self.recorder.episode is not None:  # between episodes messages are dropped unread
            self.recorder.write(topic, self.get_clock().now().nanoseconds, data)

    def _flush_loop(self) -> None:
        flush = self._causes.guard("flush_failed", self._flush)
        while not self._flush_stop.wait(self.params["flush_interval"]):
            flush()

    def _flush(self) -> None:
        try:
            self.recorder.flush()
        except OSError as error:
            self.get_logger().error(f"flushing the episode failed: {error}", throttle_duration_sec=5.0)

    # ---- services -------------------------------------------------------------------------
    def _answer(self, verb: str, handler: Callable[..., Response]) -> Callable[..., Response]:
        """`handler` made to answer every call: an unforeseen exception is a refusal saying why
        ("not started: ..."), counted in the status, instead of a dead node."""
        def answer(request: object, response: Response) -> Response:
            try:
                return handler(request, response)
            except Exception as error:  # noqa: BLE001 - the service boundary
                response.success, response.message = False, f"not {verb}: {type(error).__name__}: {error}"
                self._causes.report(f"{verb}_failed", response.message)
                return response

        return answer

    def _on_start(self, request: StartEpisode.Request, response: StartEpisode.Response) -> StartEpisode.Response:
        try:
            episode = self.recorder.start(request.instruction, request.operator_notes)
        except (RecordingRefused, OSError) as error:
            response.success, response.message = False, f"not started: {error}"
            self.get_logger().warning(response.message)
            return response
        waiting = sorted(set(self._wanted) - set(self._subscribed))
        response.success, response.episode_id, response.bag_path = True, episode.info.episode_id, str(episode.path)
        response.message = f"no publisher yet on {', '.join(waiting)}" if waiting else ""
        self.get_logger().info(f"recording episode {episode.info.episode_id} ({episode.info.instruction!r}) "
                               f"to {episode.path}" + (f"; {response.message}" if waiting else ""))
        return response

    def _on_stop(self, request: StopEpisode.Request, response: StopEpisode.Response) -> StopEpisode.Response:
        try:
            summary = self.recorder.stop(request.task_success, request.operator_notes)
        except (RecordingRefused, OSError) as error:
            response.success, response.message = False, f"not stopped: {error}"
            self.get_logger().warning(response.message)
            return response
        response.success, response.episode_id, response.bag_path = True, summary.info.episode_id, str(summary.path)
        response.message_count, response.duration = summary.message_count, summary.duration
        self.get_logger().info(f"stopped episode {summary.info.episode_id} (task success: {request.task_success}): "
                               f"{summary.message_count} messages over {summary.duration:.2f} s, "
                               f"{_counts_text(summary.counts)}")
        return response

    def _on_discard(self, request: DiscardEpisode.Request,
                    response: DiscardEpisode.Response) -> DiscardEpisode.Response:
        try:
            info = self.recorder.discard()
        except (RecordingRefused, OSError) as error:
            response.success, response.message = False, f"not discarded: {error}"
            return response
        response.success, response.episode_id = True, info.episode_id
        self.get_logger().info(f"discarded episode {info.episode_id}")
        return response

    # ---- status ---------------------------------------------------------------------------
    def _status(self) -> DiagnosticStatus:
        episode = self.recorder.episode
        waiting = sorted(set(self._wanted) - set(self._subscribed) - set(self._refused_topics))
        values = [KeyValue(key="state", value="recording" if episode else "idle"),
                  KeyValue(key="episode_id", value=episode.info.episode_id if episode else ""),
                  KeyValue(key="messages", value=str(episode.message_count if episode else 0)),
                  KeyValue(key="output_dir", value=str(self.recorder.output_dir)),
                  KeyValue(key="free_disk_mb", value=f"{self.recorder.free_mib():.0f}"),
                  KeyValue(key="waiting_for_publishers", value=", ".join(waiting))]
        values += [KeyValue(key=f"count {topic}", value=str(n)) for topic, n in sorted((episode.counts if episode
                                                                                        else {}).items())]
        values += [KeyValue(key=f"not recorded {topic}", value=why) for topic, why in self._refused_topics.items()]
        values += [KeyValue(key=f"unrecoverable {path}", value=why) for path, why in self._unrecoverable.items()]
        values += [KeyValue(key=cause, value=str(count)) for cause, count in sorted(self._causes.counts.items())]
        values += [KeyValue(key=f"{cause} (last)", value=text) for cause, text in sorted(self._causes.last.items())]
        if self._unrecoverable or self._refused_topics:
            level, message = DiagnosticStatus.ERROR, (f"{len(self._unrecoverable)} unrecoverable episode(s), "
                                                      f"{len(self._refused_topics)} topic(s) not recordable")
        elif waiting:
            level, message = DiagnosticStatus.WARN, f"no publisher on {', '.join(waiting)}"
        else:
            level, message = DiagnosticStatus.OK, "all topics subscribed"
        state = f"recording {episode.info.episode_id}" if episode else "idle"
        return DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: recorder",
                                message=f"{state}; {message}", hardware_id=self.params["embodiment"], values=values)

    def _publish_status(self) -> None:
        status = self._status()
        self._status_pub.publish(status)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def _log_counts(self) -> None:
        episode = self.recorder.episode
        if episode is not None:
            self.get_logger().info(f"episode {episode.info.episode_id}: {episode.message_count} messages, "
                                   f"{_counts_text(episode.counts)}")

    def destroy_node(self) -> None:
        """A shutdown while recording closes the episode properly, as unsuccessful, and says so."""
        flusher = getattr(self, "_flusher", None)  # None when the constructor failed
        if flusher is not None:
            self._flush_stop.set()
            flusher.join(timeout=5.0)
        recorder = getattr(self, "recorder", None)
        if recorder is not None and recorder.episode is not None:
            summary = recorder.stop(False, "stopped by the recorder's shutdown")
            self.get_logger().warning(f"shut down while recording: episode {summary.info.episode_id} closed "
                                      f"with {summary.message_count} messages, task success false")
        super().destroy_node()


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{topic}: {n}" for topic, n in sorted(counts.items()))


def main(args: list[str] | None = None) -> int:
    return run_node("vla_recorder", RecorderNode, args)


if __name__ == "__main__":
    sys.exit(main())
