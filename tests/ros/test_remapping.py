"""Remapping reaches what the side executors serve and call.

The slow services and the chunk client live on side nodes that take no command-line arguments
(see side_executor.py); their names are resolved by the main node, so `-r` rules given to the
node apply to them as to its own topics.
"""
from __future__ import annotations

import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from vla_policy_node.side_executor import SideExecutor

pytestmark = pytest.mark.ros


def test_a_side_node_serves_under_the_name_the_main_node_remaps_it_to() -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    parent = rclpy.create_node("parent", namespace="robot1", context=context,
                               cli_args=["--ros-args", "-r", "/robot1/parent/hello:=/elsewhere/hi"])
    side = SideExecutor(parent, "services")
    caller = rclpy.create_node("caller", context=context)
    try:
        assert side.name("hello") == "/elsewhere/hi" and side.name("other") == "/robot1/parent/other"

        def answer(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            response.success, response.message = True, "served"
            return response

        side.node.create_service(Trigger, side.name("hello"), answer)
        # what `ros2 node info /robot1/parent_services` lists: the served name, and no parameter services
        # (only the type description service rclpy gives every node since Jazzy, for the types it serves)
        deadline = time.monotonic() + 10.0
        while not (served := caller.get_service_names_and_types_by_node("parent_services", "/robot1")):
            assert time.monotonic() < deadline, "the side node's services never appeared in the graph"
            time.sleep(0.1)
        assert [name for name, _ in served if not name.endswith("/get_type_description")] == ["/elsewhere/hi"], served
        client = caller.create_client(Trigger, "/elsewhere/hi")
        assert client.wait_for_service(timeout_sec=10.0), "nothing serves the remapped name"
        future = client.call_async(Trigger.Request())
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(caller)
        executor.spin_until_future_complete(future, timeout_sec=10.0)
        assert future.result() is not None and future.result().message == "served"
    finally:
        side.destroy()
        caller.destroy_node()
        parent.destroy_node()
        context.try_shutdown()
