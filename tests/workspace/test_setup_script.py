"""scripts/setup.sh: clear messages for bad set-up situations, and a stale build is rebuilt."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"


def run_setup(setup: Path, env: dict[str, str], as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(setup)]
    if as_nobody and os.geteuid() == 0:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "VIRTUAL_ENV", "AMENT", "COLCON"))}
    env.update(overrides)
    return env


def test_without_root_missing_debian_packages_are_named_with_the_command(tmp_path: Path) -> None:
    result = run_setup(
        SETUP,
        base_env(VLA_APT_PACKAGES="bash vla-ros-no-such-package", HOME=str(tmp_path)),
        as_nobody=True,
    )
    assert result.returncode == 1
    assert "missing Debian packages for headless MuJoCo rendering: vla-ros-no-such-package" in result.stderr
    assert "sudo apt-get update && sudo apt-get install -y vla-ros-no-such-package" in result.stderr


def test_without_python_311_the_error_says_what_was_found(tmp_path: Path) -> None:
    """A PATH whose only python3 is 3.9 and no python3.11: the set-up stops and says so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(directory).iterdir():
            if not tool.name.startswith("python") and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    fake_python = bin_dir / "python3"
    fake_python.write_text("#!/bin/sh\necho 'Python 3.9.2'\nexit 1\n")
    fake_python.chmod(0o755)
    result = run_setup(SETUP, base_env(PATH=str(bin_dir), VLA_APT_PACKAGES="bash"))
    assert result.returncode == 1
    assert "Python 3.11 with its venv module is required" in result.stderr
    assert "python3 is: Python 3.9.2" in result.stderr


@pytest.mark.parametrize("mode, distribution_has_it, skipped", [
    ("pypi", False, False),  # the wheels lack tf2_msgs: src/tf2_msgs provides it
    ("system-jazzy", True, True),  # a ROS install's own tf2_msgs is never shadowed by an overlay
    ("system-jazzy", False, False),  # a distribution without it gets it built
])
def test_the_workspace_builds_tf2_msgs_only_where_ros_lacks_it(tmp_path: Path, mode: str, distribution_has_it: bool,
                                                                skipped: bool) -> None:
    prefix = tmp_path / "opt" / "ros" / "jazzy"
    (prefix / "share" / ("tf2_msgs" if distribution_has_it else "std_msgs")).mkdir(parents=True)
    (prefix / "share" / ("tf2_msgs" if distribution_has_it else "std_msgs") / "package.xml").write_text("<package/>")
    ours = ROOT / "install" / "tf2_msgs"  # the workspace's own install is not the distribution
    result = subprocess.run(["bash", "-c", f'source "{SETUP}"; ROS_MODE={mode}; skip_provided_interfaces'],
                            capture_output=True, text=True, timeout=30,
                            env=base_env(AMENT_PREFIX_PATH=f"{ours}:{prefix}"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == (["--packages-skip", "tf2_msgs"] if skipped else []), result.stdout


@pytest.mark.slow
def test_a_stale_build_is_removed_and_rebuilt_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    """A workspace copy whose install/ was built for another environment is rebuilt from scratch."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for name in ("src", "scripts", "requirements", "config", "launch", "env.sh"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workspace / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            shutil.copy2(source, workspace / name)
    (workspace / ".venv").symlink_to(ROOT / ".venv")
    (workspace / "install").mkdir()
    (workspace / "install" / ".vla-build-id").write_text("system-humble /opt/elsewhere/.venv\n")

    first = run_setup(workspace / "scripts" / "setup.sh", base_env(VLA_APT_PACKAGES="bash"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "stale build in install/ (built for 'system-humble /opt/elsewhere/.venv'" in first.stdout
    assert (workspace / "install" / "vla_msgs" / "share" / "vla_msgs" / "msg" / "ActionChunk.msg").exists()

    second = run_setup(workspace / "scripts" / "setup.sh", base_env(VLA_APT_PACKAGES="bash"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Python packages up to date" in second.stdout
    assert "stale" not in second.stdout
