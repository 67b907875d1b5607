"""The `main()` every node program shares: init, build the node, spin until shutdown, clean up.

A node whose construction fails on bad configuration exits with status 2 and the message on
stderr, the convention of command-line tools, instead of a traceback. Ctrl-C or SIGTERM ends
the node quietly (`spin_until_shutdown`, which the side executors' threads use too).

Ctrl-C in the terminal of a `ros2 launch` reaches every node twice: from the terminal, and
forwarded by launch. Once the first has ended spinning, the node ignores SIGINT while it cleans
up, so the second cannot cut `destroy_node` short (a KeyboardInterrupt traceback, exit code -2,
and the recorder's open episode left unclosed).

While the node spins, Ctrl-C must not raise KeyboardInterrupt at all: it can land anywhere in
the executor's Python code, for example halfway through building an rclpy `Task`, whose
`__del__` then prints a traceback at exit (seen in CI under `ros2 launch`). rclpy's own signal
handler already shuts the context down, which ends `spin_until_shutdown`; it chains to the
Python handler installed before `rclpy.init`, which therefore raises only while the node is
still starting (building it, loading a model), where nothing else would stop it.
"""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, ShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from .parameters import ParameterError

NodeT = TypeVar("NodeT", bound=Node)
CONFIGURATION_ERRORS = (ParameterError, ValueError, OSError, RuntimeError)
SHUTDOWN_POLL_S = 0.25  # the longest a signal can go unnoticed by a waiting executor (see below)


def spin_until_shutdown(executor: Executor, context: Context, stop: threading.Event | None = None) -> None:
    """Spin until `context` shuts down (a signal, `rclpy.shutdown`) or `stop` is set (the owner
    of `executor` sets it before shutting the executor down: its `spin_once` then returns at once).

    Why not `executor.spin()`: rclpy's signal thread first wakes the executors, then shuts the
    contexts down. An executor that wakes in between still sees its context up, waits again with
    no timeout and nothing will ever wake it: the process hangs until SIGKILL (seen under load
    in CI: 1 SIGTERM in about 20). Waiting at most `SHUTDOWN_POLL_S` bounds that to a fraction
    of a second, at the cost of a few wake-ups a second.

    A signal shuts the context down while the executor may be inside rclpy: taking a message
    (`take_message` then fails to convert it) or building its next wait set (`RCLError`: the
    context is not valid). Once the context is down those errors are the shutdown asked for;
    while it is up they are errors and propagate.
    """
    try:
        while context.ok() and not (stop is not None and stop.is_set()):
            executor.spin_once(timeout_sec=SHUTDOWN_POLL_S)
    except (ExternalShutdownException, ShutdownException):
        pass
    except RuntimeError:
        if context.ok():
            raise


class _InterruptWhileStarting:
    """The SIGINT handler of a node program: KeyboardInterrupt until `spinning` is set, then nothing
    (rclpy's handler, which chains to this one, has already shut the context down)."""

    def __init__(self) -> None:
        self.spinning = False

    def __call__(self, signum: int, frame: object) -> None:
        if not self.spinning:
            raise KeyboardInterrupt


def run_node(program: str, factory: Callable[[], NodeT], args: Sequence[str] | None = None,
             after_start: Callable[[NodeT], None] | None = None) -> int:
    interrupt = _InterruptWhileStarting()
    signal.signal(signal.SIGINT, interrupt)
    rclpy.init(args=args)
    try:
        node = factory()
    except CONFIGURATION_ERRORS as error:
        print(f"{program}: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if after_start is not None:
            after_start(node)  # may take seconds (loading a model): a Ctrl-C then is a shutdown too
        interrupt.spinning = True
        spin_until_shutdown(executor, node.context)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a repeated Ctrl-C must not interrupt the clean-up
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
