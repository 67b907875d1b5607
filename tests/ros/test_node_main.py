"""run_node, the main() of every node program: a shutdown by signal is quiet, an error is not."""
from __future__ import annotations

import subprocess
import sys

import pytest

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
