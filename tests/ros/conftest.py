"""Fixtures for tests that talk over real DDS: they need the built workspace (`make setup`)."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vla_msgs") is None:
    raise pytest.UsageError(
        "rclpy or vla_msgs is not importable: run the tests through `make test` "
        "(or `source env.sh` after `make setup`) so the built workspace is on the path"
    )


PEERS = Path(__file__).parent / "peers"


class RosProcess:
    """A child process running an rclpy program, with its output kept for failure messages."""

    def __init__(self, argv: list[str], ready_line: str | None = "READY") -> None:
        self.argv = argv
        self.ready_line = ready_line
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._new_line = threading.Condition()  # notified on every output line and at the end
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ),
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
            if self.ready_line is not None and line.strip() == self.ready_line:
                self._ready.set()

    def wait_for_output(self, found: Callable[[], object], timeout: float) -> object:
        """Block until `found()`, called again after each new output line, returns a true value;
        that value, or None after `timeout` s. Waits on the output itself, never a fixed sleep."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while not (value := found()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._new_line.wait(remaining)
            return value

    def wait_ready(self, timeout: float = 20.0) -> None:
        if self.ready_line is not None and not self._ready.wait(timeout):
            self.stop()
            raise AssertionError(
                f"{' '.join(self.argv)} did not print {self.ready_line!r} within {timeout} s; "
                f"exit code {self.proc.returncode}, output:\n" + "\n".join(self.lines)
            )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0, sig: signal.Signals = signal.SIGINT) -> int:
        """Send `sig` to the process group; SIGKILL it after `timeout` s. Returns the exit code
        (-9 when it had to be killed)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def ros_process() -> Iterator[Callable[..., RosProcess]]:
    """Start rclpy programs in their own processes; all are stopped when the test ends."""
    started: list[RosProcess] = []

    def start(*argv: str, ready_line: str | None = "READY") -> RosProcess:
        """Start `python argv...`; wait for its `ready_line` on stdout unless that is None."""
        process = RosProcess([sys.executable, *argv], ready_line)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()


@contextlib.contextmanager
def node_in_process(name: str):
    """An rclpy context and node named `name` in this process, with an executor to spin it
    (`node.spin_until(done, timeout)`): for a test, or for a module whose tests share one graph."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(name.replace("[", "_").replace("]", "_").replace("-", "_"), context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.spin_until = lambda done, timeout=10.0: spin_until(executor, done, timeout)
    try:
        yield node
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.fixture
def ros_node(request: pytest.FixtureRequest):
    """An rclpy context and node in this process, with an executor to spin it."""
    with node_in_process(f"test_{request.node.name[:40]}") as node:
        yield node


def spin_until(executor, done: Callable[[], bool], timeout: float) -> bool:
    """Spin until `done()` is true or `timeout` seconds pass; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.05)
    return True
