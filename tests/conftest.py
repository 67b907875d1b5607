"""Test-run isolation for the whole suite.

Every run gets its own ROS_DOMAIN_ID (held by a lock file, so two suites on one machine never
share a DDS domain) and localhost-only discovery, set in the environment before any test runs
so that the processes tests start inherit them.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import pytest

# Linux domain ids 1..101 map to ports below the ephemeral range; 0 is left to the user.
_DOMAIN_IDS = range(1, 102)
_domain_lock = None


def _claim_domain_id() -> int:
    """Take the first domain id whose lock file no other live test run holds."""
    global _domain_lock
    lock_dir = Path(tempfile.gettempdir()) / "vla_ros_test_domains"
    lock_dir.mkdir(exist_ok=True)
    start = os.getpid() % len(_DOMAIN_IDS)
    for offset in range(len(_DOMAIN_IDS)):
        domain_id = _DOMAIN_IDS[(start + offset) % len(_DOMAIN_IDS)]
        handle = open(lock_dir / f"{domain_id}.lock", "w")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _domain_lock = handle
        return domain_id
    raise RuntimeError(f"all ROS domain ids {_DOMAIN_IDS[0]}..{_DOMAIN_IDS[-1]} are held by other test runs")


def pytest_configure(config: pytest.Config) -> None:
    if "VLA_TEST_ROS_DOMAIN_ID" in os.environ:
        domain_id = int(os.environ["VLA_TEST_ROS_DOMAIN_ID"])
    else:
        domain_id = _claim_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_STATIC_PEERS", None)
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the discovery range


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} "
        f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}"
    )
