"""`make demo`'s closed loop runs to the end: simulation, policy node and executor over DDS."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_demo_closed_loop_commands_the_simulated_robot() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_closed_loop.py")], cwd=ROOT,
                            env={**os.environ, "DEMO_SECONDS": "15"}, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    done = re.search(r"done: (\d+) JointTrajectory commands", output)
    assert done and int(done.group(1)) > 0, output[-4000:]
    assert "sim time" in output and "instruction: pick up the" in output
    assert "Traceback" not in output, output[-4000:]
