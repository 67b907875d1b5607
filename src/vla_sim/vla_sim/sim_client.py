"""The simulation as a program on the graph sees it: reset service, task_state, service calls.

Shared by the programs that run episodes against `sim_node` from their own process (the
recording driver, the instructed episode, the demo): starting an episode means calling `reset`
and then waiting for the task_state of the new episode (by its episode number), because every
later decision (success, plan finished) must be about that episode, not the last one.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.client import Client
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from vla_msgs.msg import TaskState
from vla_msgs.srv import ResetScene

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class EpisodeError(RuntimeError):
    """The graph did not do what an episode needs (a service missing or silent, a refused reset)."""


class SimulationClient:
    """One rclpy node in the caller's process with the simulation's reset and task_state."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.task: TaskState | None = None  # the newest task_state
        node.create_subscription(TaskState, "task_state", self._on_task, RELIABLE)
        self.reset_client = node.create_client(ResetScene, "reset")

    def _on_task(self, msg: TaskState) -> None:
        self.task = msg

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Spin this node until `done()` or `timeout` wall seconds; returns whether it became true."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return True

    def call(self, client: Client, request: Any, timeout: float = 30.0) -> Any:
        """Call a service and wait for its answer, or raise EpisodeError naming the service."""
        if not self.spin_until(client.service_is_ready, timeout):
            raise EpisodeError(f"service {client.srv_name} is not available after {timeout:.0f} s")
        future = client.call_async(request)
        if not self.spin_until(future.done, timeout):
            raise EpisodeError(f"no answer from {client.srv_name} within {timeout:.0f} s")
        return future.result()

    def reset(self, seed: int, wording: str = "training", timeout: float = 30.0) -> TaskState:
        """Start a seeded episode; returns the first task_state of that episode."""
        if not self.spin_until(lambda: self.task is not None, timeout):
            raise EpisodeError(f"no task_state from the simulation within {timeout:.0f} s")
        previous = self.task.episode
        reply = self.call(self.reset_client, ResetScene.Request(seed=seed, wording=wording), timeout)
        if not reply.success:
            raise EpisodeError(f"reset with seed {seed} refused: {reply.message}")
        if not self.spin_until(lambda: self.task.episode > previous and self.task.instruction == reply.instruction,
                               timeout):
            raise EpisodeError(f"no task_state of the episode started with seed {seed} within {timeout:.0f} s")
        return self.task

    def succeeded(self, episode: int) -> bool:
        """The task of `episode` holds in the newest task_state."""
        return self.task is not None and self.task.episode == episode and self.task.success


def run_client(program: str, body: Callable[[SimulationClient], int]) -> int:
    """The `main()` of a program that drives episodes from its own node: `body`'s exit status; an
    EpisodeError is one line on stderr and status 1, Ctrl-C is 130; the node and rclpy are
    always shut down."""
    rclpy.init()
    node = rclpy.create_node(program)
    try:
        return body(SimulationClient(node))
    except EpisodeError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
