"""Parameters that cannot lie, over the real parameter services (what `ros2 param` calls).

The nodes read their parameters once at start-up, so a runtime `set` must be refused, not
reported as a success that changes nothing; and every declared parameter has a value, so
`ros2 param dump` (get_parameters over all names) can show the whole node.
"""
from __future__ import annotations

import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters, SetParameters

from vla_policy_node import executor_node

pytestmark = [pytest.mark.ros]


def call(node, service_type, name: str, request):
    client = node.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=30.0), f"{name} is not offered"
    future = client.call_async(request)
    assert node.spin_until(future.done, 10.0), f"no answer from {name}"
    return future.result()


def test_safety_parameters_are_read_only_and_every_parameter_has_a_value(ros_node, ros_process) -> None:
    ros_process("-m", "vla_policy_node.executor_node", "--ros-args", "-p", "embodiment:=so101", ready_line=None)
    jump = ParameterMsg(name="max_jump", value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.1))
    result = call(ros_node, SetParameters, "/vla_executor/set_parameters", SetParameters.Request(parameters=[jump]))
    [outcome] = result.results
    assert not outcome.successful, "setting max_jump at run time must be refused: the filter read it at start-up"
    assert "read-only" in outcome.reason, outcome.reason
    got = call(ros_node, GetParameters, "/vla_executor/get_parameters", GetParameters.Request(names=["max_jump"]))
    assert got.values[0].double_value == 0.5

    declared = [p.name for p in executor_node.PARAMETERS]
    names = call(ros_node, ListParameters, "/vla_executor/list_parameters", ListParameters.Request()).result.names
    assert set(declared) <= set(names)
    values = call(ros_node, GetParameters, "/vla_executor/get_parameters", GetParameters.Request(names=declared))
    unset = [name for name, value in zip(declared, values.values) if value.type == ParameterType.PARAMETER_NOT_SET]
    assert not unset, f"declared without a value (ros2 param dump shows nothing for the node): {unset}"
    servo = values.values[declared.index("servo_pose_topics")]
    assert servo.type == ParameterType.PARAMETER_STRING_ARRAY and list(servo.string_array_value) == []
    described = call(ros_node, DescribeParameters, "/vla_executor/describe_parameters",
                     DescribeParameters.Request(names=declared)).descriptors
    assert all(d.read_only for d in described), [d.name for d in described if not d.read_only]
