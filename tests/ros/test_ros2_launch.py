"""The launch files under the real `ros2 launch`, inspected with the real `ros2` command line.

launch, launch_ros and ros2cli are not on PyPI; scripts/setup.sh installs them from their
upstream sources when ../shared/ros2-python is present (elsewhere a ROS 2 install has them).
Each launch runs as a user runs it: plain and in a namespace, checked with `ros2 lifecycle get`,
`ros2 param get/dump/set`, and ended with Ctrl-C as a terminal sends it (SIGINT to the whole
process group, which launch forwards once more to every node). Each `ros2` call spins its
discovery for a fixed time, so the cases make as few calls as show what they check.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .test_runtime_nodes import fast_so101  # noqa: F401 - a fixture

ROS2 = shutil.which("ros2")
pytestmark = [
    pytest.mark.slow, pytest.mark.ros,
    pytest.mark.skipif(ROS2 is None or importlib.util.find_spec("launch_ros") is None,
                       reason="ros2 launch and the ros2 command line are not installed (scripts/setup.sh installs "
                              "them from ../shared/ros2-python when that folder is present; a ROS 2 install has "
                              "them)"),
]


class Launch:
    """`ros2 launch vla_bringup <argv>` in its own process group, its output kept."""

    def __init__(self, *argv: str, cwd: Path) -> None:
        self.lines: list[str] = []
        self._new_line = threading.Condition()  # notified on every output line and at the end
        self.proc = subprocess.Popen(
            [ROS2, "launch", "vla_bringup", *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
            # a test runner started without job control ignores SIGINT, and children inherit that
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:
            self._new_line.notify_all()

    def wait_for_output(self, text: str, timeout: float) -> None:
        """Until a line holds `text` (waits on the output itself); fails if launch ends first."""
        with self._new_line:
            done = self._new_line.wait_for(lambda: any(text in line for line in self.lines)
                                           or self.proc.poll() is not None, timeout)
        assert done and any(text in line for line in self.lines), \
            f"{text!r} not in the launch output within {timeout} s:\n{self.output}"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def ctrl_c(self, timeout: float = 60.0) -> int:
        """SIGINT to the whole process group, as a terminal's Ctrl-C; the exit code of launch."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"ros2 launch did not end within {timeout} s of Ctrl-C:\n{self.output}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Launch]]:
    started: list[Launch] = []

    def start(*argv: str) -> Launch:
        started.append(Launch(*argv, cwd=tmp_path))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def ros2(*args: str, timeout: float = 20.0) -> str:
    """Output of `ros2 <args> --no-daemon` (no daemon outlives the test), given 2 s to discover the
    node (the default 0.5 s says "Node not found" on a loaded machine). A call whose service reply
    never comes (a request sent while the node's endpoints were still being matched is lost, and
    the CLI waits forever) is ended after `timeout` s; `eventually` retries both."""
    try:
        result = subprocess.run([ROS2, *args, "--no-daemon", "--spin-time", "2"], capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"`ros2 {' '.join(args)}` gave no answer within {timeout} s"
    return result.stdout + result.stderr


def eventually(probe: Callable[[], str], expected: str, timeout: float, launched: Launch) -> str:
    """`probe()` until its output holds `expected` (the nodes take seconds to load a model)."""
    deadline = time.monotonic() + timeout
    while True:
        output = probe()
        if expected in output:
            return output
        if time.monotonic() > deadline or launched.proc.poll() is not None:
            raise AssertionError(f"{expected!r} not in {output!r} within {timeout} s; launch output:\n"
                                 f"{launched.output}")
        time.sleep(1.0)


def assert_quiet_shutdown(launched: Launch) -> None:
    code = launched.ctrl_c()
    output = launched.output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "exit code -2" not in output and "process has died" not in output, output
    assert code == 0, f"ros2 launch exited with {code}:\n{output}"


@pytest.mark.parametrize("namespace", ["", "robot1"])
def test_policy_launch_starts_both_nodes_with_the_parameter_file_in_any_namespace(launch, fast_so101,  # noqa: F811
                                                                                  namespace: str) -> None:
    profile, checkpoint = fast_so101
    prefix = f"/{namespace}" if namespace else ""
    launched = launch("policy.launch.py", f"checkpoint:={checkpoint}", f"embodiment:={profile}",
                      *([f"namespace:={namespace}"] if namespace else []))
    # the policy node in the namespace, configured and activated by the launch file (asked once it
    # says it has loaded: each earlier `ros2` call would cost its discovery time for nothing)
    launched.wait_for_output("model warmed up", 120.0)
    eventually(lambda: ros2("lifecycle", "get", f"{prefix}/vla_policy"), "active [3]", 60.0, launched)
    executor = f"{prefix}/vla_executor"
    # the executor in the namespace; config/policy.yaml sets mode: ensemble (the node's default is
    # async): the file reached the node; empty string arrays are initialised, so they are dumped
    dump = eventually(lambda: ros2("param", "dump", executor), "max_jump: 0.5", 30.0, launched)
    assert "mode: ensemble" in dump and "servo_pose_topics: []" in dump, dump
    eventually(lambda: ros2("param", "set", executor, "max_jump", "0.1"), "read-only", 30.0, launched)
    assert_quiet_shutdown(launched)


def test_launch_arguments_reach_the_nodes_as_strings(launch, fast_so101) -> None:  # noqa: F811
    """`output_dir:=2024` is a directory name, not the integer YAML would make of it."""
    profile, _ = fast_so101
    launched = launch("record.launch.py", f"embodiment:={profile}", "output_dir:=2024")
    output = eventually(lambda: ros2("param", "get", "/vla_recorder", "output_dir"), "String value is: 2024", 60.0,
                        launched)
    assert "String value is: 2024" in output
    assert_quiet_shutdown(launched)
