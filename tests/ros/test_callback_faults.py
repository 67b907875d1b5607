"""A callback that raises must not leave a node silently half-dead.

rclpy ends an executor's spin when a callback raises: on a side executor (the policy's chunk
service, its goals, the executor's answers) that ends the thread while the node goes on
reporting READY. The nodes guard their callbacks (`CauseLog.guard`); a thread that dies anyway
is recorded by its SideExecutor and reported by the policy node as an error.
"""
from __future__ import annotations

import threading

import pytest
import rclpy
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from vla_msgs.msg import PolicyStatus
from vla_policy_node.policy_node import PolicyNode
from vla_policy_node.side_executor import SideExecutor
from vla_policy_node.status import CauseLog

pytestmark = pytest.mark.ros


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


class ListLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str) -> None:
        self.lines.append(text)

    error = warning


def test_a_guarded_callback_counts_the_exception_under_its_cause_and_runs_again() -> None:
    logger = ListLogger()
    causes = CauseLog(logger)
    calls = []

    def on_message(value: int) -> int:
        calls.append(value)
        if value < 0:
            raise ZeroDivisionError("negative")
        return value * 2

    guarded = causes.guard("message_callback_failed", on_message)
    assert guarded(-1) is None and guarded(-2) is None
    assert guarded(3) == 6, "sane input after a failure is served as usual"
    assert causes.counts["message_callback_failed"] == 2
    assert causes.last["message_callback_failed"] == "on_message failed: ZeroDivisionError: negative"
    assert sum("Traceback" in line for line in logger.lines) == 1, "the first traceback is logged, not every one"


def test_a_side_executor_thread_that_dies_says_why(context) -> None:
    parent = rclpy.create_node("parent", context=context)
    side = SideExecutor(parent, "service")
    try:
        side.node.create_service(Trigger, side.name("explode"), lambda request, response: 1 / 0)
        client = parent.create_client(Trigger, side.name("explode"))
        assert client.wait_for_service(timeout_sec=10.0)
        client.call_async(Trigger.Request())
        done = threading.Event()
        threading.Thread(target=lambda: (side._thread.join(10.0), done.set()), daemon=True).start()
        assert done.wait(15.0)
        assert side.failure is not None and "ZeroDivisionError" in side.failure, side.failure
        assert "parent_service thread died" in side.failure
    finally:
        side.destroy()
        parent.destroy_node()


def test_the_policy_node_reports_a_dead_callback_thread_as_an_error(context) -> None:
    node = PolicyNode(context=context, parameter_overrides=[Parameter("checkpoint", value="/no/checkpoint")])

    class Dead:
        failure = "the vla_policy_chunks thread died: ValueError: boom"

        def destroy(self) -> None:
            pass

    try:
        node._side_executors = [Dead()]
        report = node._report()
        assert report.state == PolicyStatus.STATE_ERROR
        assert "the vla_policy_chunks thread died: ValueError: boom" in report.detail
    finally:
        node.destroy_node()


def test_a_recorder_service_that_fails_unexpectedly_answers_with_the_reason(context, tmp_path) -> None:
    from vla_msgs.srv import StartEpisode
    from vla_policy_node.recorder_node import RecorderNode

    node = RecorderNode(context=context, parameter_overrides=[Parameter("output_dir", value=str(tmp_path))])
    try:
        def broken(instruction: str, notes: str):
            raise RuntimeError("the bag writer is gone")

        node.recorder.start = broken
        [service] = [s for s in node.services if s.srv_name.endswith("/start_episode")]
        response = service.callback(StartEpisode.Request(instruction="pick"), StartEpisode.Response())
        assert not response.success
        assert response.message == "not started: RuntimeError: the bag writer is gone"
        assert node._causes.counts["started_failed"] == 1
        values = {kv.key: kv.value for kv in node._status().values}
        assert values["started_failed"] == "1"
    finally:
        node.destroy_node()
