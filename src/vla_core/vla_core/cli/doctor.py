"""`vla doctor`: say whether this environment can run vla_ros, and what to do where it cannot.

It only looks (find_spec, library look-ups, versions); it never imports rclpy, so it also runs
in a plain venv without ROS and says so.
"""
from __future__ import annotations

import argparse
import ctypes.util
import importlib.metadata
import importlib.util
import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _distribution_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _module_check(module: str, distributions: tuple[str, ...], hint: str, required: bool = True) -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(module, False, f"not importable: {hint}", required)
    version = _distribution_version(*distributions)
    return Check(module, True, f"version {version}" if version else "importable", required)


def run_checks() -> list[Check]:
    ros_hint = "run `make setup`, then `source env.sh`"
    ros_distro = os.environ.get("ROS_DISTRO")
    checks = [
        Check("python", True, f"{platform.python_version()} ({platform.machine()})"),
        Check(
            "ros",
            True,
            f"ROS 2 {ros_distro} (sourced)" if ros_distro else "ROS 2 core from PyPI wheels (no distribution sourced)",
        ),
        _module_check("rclpy", ("ros-rclpy", "rclpy"), ros_hint),
        _module_check("vla_msgs", (), "the interface package is not built or not sourced: " + ros_hint),
        Check(
            "rmw",
            True,
            os.environ.get("RMW_IMPLEMENTATION", "distribution default"),
        ),
        Check(
            "ros domain",
            True,
            f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0 (default)')}, "
            f"discovery={os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SUBNET (default)')}",
        ),
        _module_check("torch", ("torch",), "pip install -r requirements/runtime.txt"),
        _module_check("mujoco", ("mujoco",), "pip install -r requirements/runtime.txt"),
        _module_check("pinocchio", ("pin",), "pip install -r requirements/runtime.txt"),
        _module_check("transformers", ("transformers",), "optional: Hugging Face backbones", required=False),
    ]
    egl = ctypes.util.find_library("EGL")
    checks.append(
        Check(
            "egl",
            egl is not None,
            f"{egl}, MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}"
            if egl
            else "libEGL not found: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri (headless rendering)",
        )
    )
    return checks


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    width = max(len(check.name) for check in checks)
    for check in checks:
        mark = "ok " if check.ok else ("ERR" if check.required else "-- ")
        print(f"[{mark}] {check.name:<{width}}  {check.detail}")
    failed = [check.name for check in checks if check.required and not check.ok]
    if failed:
        print(f"not ready: {', '.join(failed)}")
        return 1
    print("ready")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check that this environment can run vla_ros")
    parser.set_defaults(run=run)
