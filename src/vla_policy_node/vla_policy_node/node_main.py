"""The `main()` every node program shares: init, build the node, spin until shutdown, clean up.

A node whose construction fails on bad configuration exits with status 2 and the message on
stderr, the convention of command-line tools, instead of a traceback. Ctrl-C or SIGTERM ends
the node quietly (`spin_until_shutdown`, which the side executors' threads use too).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, ShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from .parameters import ParameterError

NodeT = TypeVar("NodeT", bound=Node)
CONFIGURATION_ERRORS = (ParameterError, ValueError, OSError, RuntimeError)


def spin_until_shutdown(executor: Executor, context: Context) -> None:
    """Spin until `context` shuts down (a signal, `rclpy.shutdown`) or the executor does.

    A signal shuts the context down while the executor may be inside rclpy: taking a message
    (`take_message` then fails to convert it) or building its next wait set (`RCLError`: the
    context is not valid). Once the context is down those errors are the shutdown asked for;
    while it is up they are errors and propagate.
    """
    try:
        executor.spin()
    except (ExternalShutdownException, ShutdownException):
        pass
    except RuntimeError:
        if context.ok():
            raise


def run_node(program: str, factory: Callable[[], NodeT], args: Sequence[str] | None = None,
             after_start: Callable[[NodeT], None] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = factory()
    except CONFIGURATION_ERRORS as error:
        print(f"{program}: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    if after_start is not None:
        after_start(node)
    try:
        spin_until_shutdown(executor, node.context)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
