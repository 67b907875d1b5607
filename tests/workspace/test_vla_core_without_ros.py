"""vla_core is a plain Python package: it installs and imports with no ROS at all."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLA_CORE = ROOT / "src" / "vla_core"
ROS_MODULES = ("rclpy", "rosidl", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs",
               "geometry_msgs", "trajectory_msgs", "vla_msgs", "launch", "launch_ros", "ament_index_python")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_vla_core_module_imports_ros() -> None:
    sources = sorted((VLA_CORE / "vla_core").rglob("*.py"))
    assert sources, f"no Python sources found under {VLA_CORE / 'vla_core'}"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & set(ROS_MODULES)) for path in sources
    }
    assert not {k: v for k, v in offenders.items() if v}, "vla_core must not import ROS"


def test_importing_all_of_vla_core_loads_no_ros_module() -> None:
    """Import every vla_core module in a process where ROS is unreachable, and check sys.modules."""
    program = f"""
import importlib, pkgutil, sys
class BlockRos:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ROS_MODULES!r}:
            raise ImportError(f"ROS module {{name}} imported by vla_core")
sys.meta_path.insert(0, BlockRos())
import vla_core
for info in pkgutil.walk_packages(vla_core.__path__, "vla_core."):
    importlib.import_module(info.name)
print(sorted(m for m in sys.modules if m.startswith("vla_core")))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "ROS_DISTRO")}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "vla_core.cli" in result.stdout


@pytest.mark.slow
def test_pip_installs_into_a_plain_venv_without_ros(tmp_path: Path) -> None:
    """A fresh venv of the base interpreter (no ROS, no workspace) installs and imports vla_core."""
    env_dir = tmp_path / "plain"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    clean_env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path))}
    # --no-deps: the point is the package itself (its dependencies are ordinary PyPI packages);
    # the build backend comes from the package index as for any user.
    # built from a copy: setuptools writes build/ and egg-info next to the sources
    source_copy = tmp_path / "vla_core_src"
    shutil.copytree(VLA_CORE, source_copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "-q", str(source_copy)],
        capture_output=True, text=True, env=clean_env, timeout=240,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run(
        [python, "-c", "import importlib.util, vla_core; "
                       "assert importlib.util.find_spec('rclpy') is None; print(vla_core.__version__)"],
        capture_output=True, text=True, env=clean_env, cwd=tmp_path, timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "0.1.0"
