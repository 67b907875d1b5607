"""`make loop` (scripts/teleop_to_policy.sh) runs to the end with tiny sizes, and every stage
leaves its real product: a rosbag2 episode with vla_ros metadata recorded over DDS from the
scripted leader arm doing cube_in_bin (one: several bags into one dataset is test_convert's), a
LeRobot v3.0 dataset of it, a fine-tuned checkpoint
for the SO-101 that loads, a deployed policy whose commands reached the simulated robot, and
an evaluation report. The loop's dataset then feeds LeRobot's own trainer (issue 34's loop with the
ecosystem's trainer): the tiny ACT that `lerobot-train` makes from these recorded, converted bags is
served by the LeRobot backend and evaluated with `vla eval`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.ros]
INSTRUCTION = re.compile(r"put the (red|green|blue) cube in the bin")
PROFILE_TOPICS = {"/front/image_raw", "/wrist/image_raw", "/joint_states", "/joint_trajectory_controller/joint_trajectory"}


def _gripper_picks_and_places(gripper: np.ndarray) -> bool:
    """Open for the approach, closed on the cube, then opened wide in the bin, in that order
    (SO-101 script: open 0.5, closed -0.1, release 0.8)."""
    opened = np.flatnonzero(gripper >= 0.45)
    closed = np.flatnonzero(gripper <= 0.0)
    if not len(opened) or not np.any(closed > opened[0]):
        return False
    grasp = closed[closed > opened[0]][0]
    return bool(np.any(gripper[grasp:] >= 0.7))


@dataclass
class LoopRun:
    base: Path  # the untrained bring-up checkpoint the loop fine-tunes
    loop: Path  # LOOP_DIR: bags/, dataset/, train/, eval/, logs/
    log: str  # the script's stdout and stderr


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory) -> LoopRun:
    """`make loop`'s script once per module with tiny sizes: its recorded and converted dataset is
    what both tests here start from (recording is the expensive part)."""
    from vla_core.bringup_checkpoint import write_initial_checkpoint

    tmp_path = tmp_path_factory.mktemp("teleop_loop")
    base = write_initial_checkpoint(["so101"], tmp_path / "base")
    loop = tmp_path / "loop"
    env = {**os.environ, "EPISODES": "1", "STEPS": "3", "BATCH_SIZE": "4", "EVAL_EPISODES": "1",
           "EVAL_WORDING": "training", "EVAL_MODE": "sync", "EVAL_TIME_LIMIT": "2", "DEPLOY_SECONDS": "3",
           "IMAGE_SIZE": "64", "CAMERA_RATE_HZ": "15", "SEED_BASE": "2", "LOOP_DIR": str(loop)}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "teleop_to_policy.sh"), str(base)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=560, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    return LoopRun(base, loop, log)


@pytest.mark.timeout(600)
def test_teleop_record_convert_finetune_deploy_eval(loop_run: LoopRun) -> None:
    from vla_core.data.lerobot_v3 import load_episodes
    from vla_core.model.policy import VLAPolicy

    base, loop, log = loop_run.base, loop_run.loop, loop_run.log
    for stage in ("record", "convert", "train", "deploy", "eval"):
        assert re.search(rf"^== {stage} done in \d+ s", log, re.MULTILINE), f"no timing for {stage}:\n{log[-3000:]}"
    assert re.search(r"^== the loop in \d+ s", log, re.MULTILINE)

    # record: a successful demonstration, a bag with the profile's topics and vla_ros metadata
    bags = sorted(path.parent for path in (loop / "bags").glob("*/metadata.yaml"))
    assert len(bags) == 1, log[-3000:]
    for bag in bags:
        information = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        custom = information["custom_data"]
        assert INSTRUCTION.fullmatch(custom["vla_ros.instruction"]), custom
        assert (custom["vla_ros.embodiment"], custom["vla_ros.success"], custom["vla_ros.episode_id"]) == \
            ("so101", "true", bag.name)
        counts = {t["topic_metadata"]["name"]: t["message_count"] for t in information["topics_with_message_count"]}
        assert set(counts) == PROFILE_TOPICS and min(counts.values()) > 50, counts

    # convert: a LeRobot v3.0 dataset with the episode, a full pick-and-place into the bin
    info = json.loads((loop / "dataset" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 1
    episodes = load_episodes(loop / "dataset")
    assert len(episodes) == 1
    gripper = episodes[0].state.shape[1] - 1  # the SO-101's gripper is its last joint
    for episode in episodes:
        assert INSTRUCTION.fullmatch(episode.task) and episode.success is True
        assert len(episode) > 150, f"{len(episode)} frames: less than 5 s of a 10-12 s demonstration"
        assert _gripper_picks_and_places(episode.action[:, gripper]), "the actions do not grasp and release"
        assert np.ptp(episode.state[:, 0]) > 0.1, "the arm did not turn towards the cube and the bin"

    # train: a fine-tuned checkpoint that loads, still for the SO-101, with weights moved from the base
    checkpoint = Path(re.findall(r"^final checkpoint: (.+)$", log, re.MULTILINE)[-1])
    policy = VLAPolicy.from_pretrained(str(checkpoint))
    assert "so101" in policy.embodiments
    before, after = load_file(base / "model.safetensors"), load_file(checkpoint / "model.safetensors")
    assert set(before) == set(after)
    assert any(not np.array_equal(before[name], after[name]) for name in before), "training changed no weight"

    # deploy: one instructed episode through the policy node and executor, commands reached the robot
    deployed = re.search(r"policy episode \(seed \d+\) '([^']+)': .*; success: (true|false).*"
                         r"; commands received: (\d+); chunks executed: (\d+)", log)
    assert deployed, log[-3000:]
    assert INSTRUCTION.fullmatch(deployed[1]) and int(deployed[3]) > 0 and int(deployed[4]) > 0

    # eval: the report of the fine-tuned checkpoint on cube_in_bin
    report = json.loads((loop / "eval" / "results.json").read_text())
    assert report["settings"]["description"] == f"checkpoint {checkpoint}"
    [cell] = report["cells"]
    assert cell["key"] == {"embodiment": "so101", "task": "cube_in_bin", "wording": "training", "mode": "sync"}
    assert cell["episodes"] == 1 and cell["chunks"] > 0


@pytest.mark.timeout(900)  # the loop fixture's 3-5 minutes fall in here when this test runs alone
def test_lerobots_own_trainer_on_the_recorded_bags_gives_a_policy_served_and_evaluated(loop_run: LoopRun,
                                                                                        tmp_path) -> None:
    """Issue 34's loop with LeRobot's trainer: bags recorded over DDS by `vla record`, converted by
    `vla convert` (the fixture), a tiny ACT trained on that dataset by `lerobot-train` (3 steps: enough
    to prove LeRobot reads the dataset and the backend serves what LeRobot saves, not to learn the
    task), served by the LeRobot backend in its child process (chunks in the profile's action
    space, deterministic for a seed) and run by `vla eval` for one short episode, whose chunks the
    executor's control step executes. `vla up` serving a LeRobot ACT over DDS is
    tests/ros/test_lerobot_serving.py."""
    from vla_core.backends.lerobot_backend import LeRobotBackend
    from vla_core.embodiment import load_embodiment

    from tests.core.test_lerobot_backend import _lerobot_python_or_skip, _observation, train_tiny_act_with_lerobot

    python = _lerobot_python_or_skip()
    policy = train_tiny_act_with_lerobot(python, loop_run.loop / "dataset", tmp_path / "lerobot_train", steps=3)
    config = json.loads((policy / "config.json").read_text())
    assert config["type"] == "act" and set(config["input_features"]) == {
        "observation.images.front", "observation.images.wrist", "observation.state"}, config["input_features"]

    spec = load_embodiment("so101")
    backend = LeRobotBackend(str(policy), spec, python=python)
    try:
        assert backend.requirements.backend == "lerobot:act" and not backend.requirements.accepts_prefix
        observation = _observation(spec, np.random.default_rng(4))
        chunk = backend.predict_chunk(observation, "put the red cube in the bin", seed=0)
        again = backend.predict_chunk(observation, "put the red cube in the bin", seed=0)
        assert chunk.actions.shape == (spec.chunk_size, spec.action_dim) and np.all(np.isfinite(chunk.actions))
        np.testing.assert_array_equal(chunk.actions, again.actions)
    finally:
        backend.close()

    output = tmp_path / "eval"
    result = subprocess.run([sys.executable, "-m", "vla_core.cli", "eval", "--checkpoint", str(policy),
                             "--embodiment", "so101", "--task", "cube_in_bin", "--episodes", "1",
                             "--wording", "training", "--mode", "async", "--time-limit", "2",
                             "--output", str(output)],
                            cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((output / "results.json").read_text())
    assert report["settings"]["description"] == f"checkpoint {policy}"
    [cell] = report["cells"]
    assert cell["key"] == {"embodiment": "so101", "task": "cube_in_bin", "wording": "training", "mode": "async"}
    # 3 steps teach nothing: the executor's safety filter refuses this ACT's far targets (max_jump) and
    # holds, so the episode shows chunks reaching the control step, not motion or success
    assert cell["episodes"] == 1 and cell["chunks"] > 0, cell
