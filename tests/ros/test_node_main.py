"""run_node, the main() of every node program: a shutdown by signal is quiet and certain, an error
is not quiet."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from vla_policy_node.node_main import SHUTDOWN_POLL_S, spin_until_shutdown

pytestmark = pytest.mark.ros

PROGRAM = """
import rclpy, sys
from rclpy.node import Node
from vla_policy_node.node_main import run_node

class Failing(Node):
    def __init__(self):
        super().__init__("failing")
        self.create_timer(0.05, self.tick)

    def tick(self):
        if {shut_down_first}:
            rclpy.shutdown()  # what rclpy's SIGINT/SIGTERM handler does before the take fails
        raise RuntimeError("Unable to convert call argument '0' to Python object")

sys.exit(run_node("failing", Failing, sys.argv))
"""


@pytest.mark.parametrize("shut_down_first, quiet", [(True, True), (False, False)])
def test_a_runtime_error_during_shutdown_is_the_shutdown_and_otherwise_an_error(shut_down_first: bool,
                                                                                quiet: bool) -> None:
    result = subprocess.run([sys.executable, "-c", PROGRAM.format(shut_down_first=shut_down_first)],
                            capture_output=True, text=True, timeout=60, check=False)
    if quiet:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    else:
        assert result.returncode != 0 and "Unable to convert call argument" in result.stderr, result.stderr


def test_spinning_ends_when_the_context_goes_down_without_waking_the_executor() -> None:
    """rclpy's signal thread wakes the executors and only then shuts the contexts down; an
    executor woken in between waits again. Shutting the context down underneath it (no wake-up,
    no on_shutdown callback) is that case made certain: spinning must still end."""
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("spinner", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinning = threading.Thread(target=spin_until_shutdown, args=(executor, context), daemon=True)
    spinning.start()
    try:
        spinning.join(timeout=1.0)
        assert spinning.is_alive(), "spinning ended while the context was up"
        context.handle.shutdown()  # what rclpy's signal thread does after the wake-up
        spinning.join(timeout=SHUTDOWN_POLL_S + 2.0)
        assert not spinning.is_alive(), "the executor kept waiting after its context shut down"
    finally:
        executor.wake()  # lets a plain spin() see the shutdown, so its thread does not outlive the test
        spinning.join(timeout=2.0)
        node.destroy_node()
        context.try_shutdown()


BUSY_PROGRAM = """
import sys, time
from rclpy.node import Node
from vla_policy_node.node_main import run_node

class Busy(Node):
    def __init__(self):
        super().__init__("busy")
        self.create_timer(0.05, self.tick)

    def tick(self):
        print("in callback", flush=True)
        try:
            time.sleep(1.0)
        except KeyboardInterrupt:
            print("INTERRUPTED inside the executor", flush=True)
            raise

sys.exit(run_node("busy", Busy, sys.argv))
"""


def test_ctrl_c_while_spinning_shuts_down_without_raising_inside_the_executor() -> None:
    """A KeyboardInterrupt can land anywhere in the executor's Python code: halfway through
    building an rclpy Task it leaves one whose `__del__` prints a traceback at exit (seen in CI
    under `ros2 launch`). A callback busy in Python when Ctrl-C comes makes the case certain:
    the signal must shut the node down without interrupting the callback."""
    process = subprocess.Popen([sys.executable, "-c", BUSY_PROGRAM], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "in callback"
        process.send_signal(subprocess.signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "INTERRUPTED" not in stdout and "Traceback" not in stderr, stdout + stderr
