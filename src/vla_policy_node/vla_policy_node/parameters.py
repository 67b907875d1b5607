"""Declare a node's parameters from one table, with descriptions, and validate them at start-up.

Each node lists its parameters once (name, default, description, check); `declare_and_read`
declares them so `ros2 param describe` shows the descriptions, reads them, and raises one
`ParameterError` naming every bad parameter and what it expects, instead of failing later
somewhere deep in the node.

The nodes read their parameters once, at start-up (the safety filter, the scheduler and the
subscriptions are built from them), so every one is declared read-only: `ros2 param set
/vla_executor max_jump 0.1` is refused with "read-only" instead of reporting a success that
changes nothing. Change them in the parameter file or on the command line and restart.

An empty string-array default is declared as an initialised empty STRING_ARRAY, not left
uninitialised: rclpy cannot declare one directly (it types `[]` as a byte array), and an
uninitialised parameter makes `ros2 param dump` print nothing for the whole node.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

Check = Callable[[Any], "str | None"]  # returns what is wrong with the value, or None


class ParameterError(ValueError):
    """One or more parameters with values the node cannot run with."""


@dataclass(frozen=True)
class Param:
    name: str
    default: Any  # a list default must hold at least its element type: [] declares a string array
    description: str
    check: Check | None = None


def declare_and_read(node: Node, table: Sequence[Param]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in table:
        descriptor = ParameterDescriptor(description=param.description, read_only=True)
        if param.default == []:
            node.declare_parameter(param.name, Parameter.Type.STRING_ARRAY, descriptor)
            try:
                value = node.get_parameter(param.name).value
            except ParameterUninitializedException:  # not overridden: give it its empty default (see above)
                node._parameters[param.name] = Parameter(param.name, Parameter.Type.STRING_ARRAY, [])
                value = []
        else:
            value = node.declare_parameter(param.name, param.default, descriptor).value
        values[param.name] = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value
    problems = []
    for param in table:
        problem = param.check(values[param.name]) if param.check else None
        if problem:
            problems.append(f"parameter '{param.name}' = {values[param.name]!r}: {problem}")
    if problems:
        raise ParameterError("; ".join(problems))
    return values


# ---- checks -----------------------------------------------------------------------------------
def positive(value: Any) -> str | None:
    return None if value > 0 else "expected a value > 0"


def in_range(low: float, high: float) -> Check:
    return lambda value: None if low <= value <= high else f"expected a value in [{low}, {high}]"


def one_of(*choices: str) -> Check:
    return lambda value: None if value in choices else f"expected one of {list(choices)}"


def non_empty(value: Any) -> str | None:
    return None if value else "expected a non-empty value"


def empty_or_length(length: int) -> Check:
    return lambda value: None if len(value) in (0, length) else f"expected {length} numbers, or none"
