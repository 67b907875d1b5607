"""A pip-installed vla_core carries its embodiment profiles and parameter files (package data) and
finds them with no workspace and no ROS; `vla up` there names the ROS package it needs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("vla_core/config/policy.yaml", "vla_core/config/record.yaml",
           "vla_core/config/embodiments/so101.yaml", "vla_core/config/embodiments/aloha.yaml")


def test_a_wheel_of_vla_core_finds_its_profiles_outside_the_repository(tmp_path: Path) -> None:
    # built from a copy, as a source distribution would be (setuptools writes build/ next to the
    # sources); the copy follows vla_core/config, the link to the workspace's config/
    source = tmp_path / "vla_core_src"
    shutil.copytree(ROOT / "src" / "vla_core", source, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                                      "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("vla_core-*.whl")))
    assert set(SHIPPED) <= set(wheel.namelist())
    site = tmp_path / "site"
    wheel.extractall(site)
    # this interpreter's third-party packages, but neither the workspace's vla_core nor ROS
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "ROS_DISTRO")}
    env["PYTHONPATH"] = str(site)
    program = ("import vla_core.embodiment as e, vla_core.config_files as c\n"
               "print(e.load_embodiment('so101').source, e.load_embodiment('aloha').source, "
               "c.find_config_file('policy.yaml'), e.available_embodiments(), sep='\\n')\n")
    found = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
    assert found.returncode == 0, found.stderr
    so101, aloha, policy, names = found.stdout.splitlines()
    assert Path(so101) == site / "vla_core" / "config" / "embodiments" / "so101.yaml"
    assert Path(aloha) == site / "vla_core" / "config" / "embodiments" / "aloha.yaml"
    assert Path(policy) == site / "vla_core" / "config" / "policy.yaml"
    assert names == "['aloha', 'so101']"
    up = subprocess.run([sys.executable, "-m", "vla_core.cli", "up", "--checkpoint", "x"], capture_output=True,
                        text=True, env=env, cwd=tmp_path, timeout=120)
    assert up.returncode == 2 and "provided by the ROS package vla_bringup, which is not installed" in up.stderr
