"""The `main()` every node program shares: init, build the node, spin until shutdown, clean up.

A node whose construction fails on bad configuration exits with status 2 and the message on
stderr, the convention of command-line tools, instead of a traceback. Ctrl-C or SIGTERM ends
the node quietly, including the race where rclpy fails to take a message from a subscription
whose context the signal has just shut down.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from .parameters import ParameterError

NodeT = TypeVar("NodeT", bound=Node)
CONFIGURATION_ERRORS = (ParameterError, ValueError, OSError, RuntimeError)


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
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        if rclpy.ok():
            raise
        # the signal handler shut the context down while the executor was taking a message
        # (rclpy then fails inside take_message): that is the shutdown asked for, not an error
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
