"""Recovery demonstrations (DAgger's takeover form): a policy drives, the scripted teleoperator
finishes from wherever it left the arm and the cube, and `vla collect --recover-with` records
only the teleoperator's part."""
from __future__ import annotations

import numpy as np
import pytest

from vla_core.cli import main as vla_main
from vla_core.data.lerobot_v3 import load_episodes
from vla_core.embodiment import load_embodiment
from vla_core.evaluation.closed_loop import ClosedLoop, ExecutionSettings
from vla_core.evaluation.environments import sim_task
from vla_core.evaluation.policies import ScriptedOracle
from vla_core.evaluation.recovery import HandoverWindow, run_recovery_episode
from vla_core.kinematics import RobotKinematics
from vla_core.sim.factory import make_teleop
from vla_core.sim.tasks import sample_task

SEED = 5000  # recovery seeds: above the demonstrations', below the evaluation's


@pytest.fixture(scope="module")
def spec():
    return load_embodiment("so101")


@pytest.fixture(scope="module")
def oracle_loop(spec):
    loop = ClosedLoop(sim_task("so101", "pick_cube"), spec, ScriptedOracle(spec), ExecutionSettings(), latency=0.05)
    yield loop
    loop.close()


def test_the_teleoperator_rises_from_where_the_policy_left_the_arm_and_finishes(spec, oracle_loop) -> None:
    """Handed over at the bottom of the oracle's descent (jaws around the cube, open), the
    teleoperator must first lift straight up, not sweep the jaws sideways through the cube."""
    camera = spec.main_camera.name
    home = oracle_loop.scene.home.copy()
    episode = run_recovery_episode(oracle_loop, make_teleop(spec), SEED, 2.6, (camera,))
    assert not episode.policy_succeeded and episode.handover == 2.6
    rollout = episode.rollout
    assert rollout is not None and rollout.success
    assert np.abs(rollout.state[0] - home).max() > 0.3, "the demonstration starts where the policy left the arm"
    assert rollout.images[camera].shape[0] == len(rollout.timestamps) == len(rollout.state)
    kinematics = RobotKinematics(spec)
    tool = np.array([kinematics.forward(row)[0][:3, 3] for row in rollout.action])
    start = kinematics.forward(rollout.state[0])[0][:3, 3]
    rise = tool[: int(0.4 * spec.control_rate_hz)]  # the rise takes 0.6 s / speed (speed at most 1.25)
    assert np.all(np.diff(rise[:, 2]) > -1e-4) and rise[-1, 2] - start[2] > 0.02
    assert np.linalg.norm(rise[:, :2] - start[:2], axis=1).max() < 0.005


def test_a_plan_from_the_home_pose_does_not_rise(spec, oracle_loop) -> None:
    """Every scripted demonstration starts at home, above any hover: its plan is unchanged."""
    scene, teleop = oracle_loop.scene, make_teleop(spec)
    for seed in range(3):
        scene.reset(seed)
        task = sample_task("pick_cube", seed, scene.colours)
        grasp, jaws = teleop.grasp(0, scene.joint_positions(), scene.cube(task.colour).position,
                                   scene.cube_yaw(task.colour))
        above = teleop.solve(0, grasp + [0, 0, 0.05], jaws, scene.joint_positions())
        row = scene.joint_positions()
        row[:5] = above
        assert teleop._rise_to(0, scene.joint_positions(), row, 0.5, 0.6) == []


def test_a_policy_that_already_succeeded_leaves_nothing_to_record(spec, oracle_loop) -> None:
    episode = run_recovery_episode(oracle_loop, make_teleop(spec), SEED, 12.0, (spec.main_camera.name,))
    assert episode.policy_succeeded and episode.rollout is None


def test_handover_times_are_drawn_in_the_window_by_seed() -> None:
    window = HandoverWindow(1.0, 10.0)
    draws = [window.draw(seed) for seed in range(5000, 5200)]
    assert all(1.0 <= t <= 10.0 for t in draws) and np.ptp(draws) > 7.0
    assert draws == [window.draw(seed) for seed in range(5000, 5200)]
    assert HandoverWindow(3.0, 3.0).draw(1) == 3.0
    for bad in ((0.0, 1.0), (2.0, 1.0)):
        with pytest.raises(ValueError, match="0 < earliest <= latest"):
            HandoverWindow(*bad)


def test_vla_collect_refuses_a_bad_handover_window(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        vla_main(["collect", "--recover-with", "x", "--handover", "5,1", "--output", str(tmp_path / "d")])
    assert "EARLIEST,LATEST" in capsys.readouterr().err


@pytest.mark.slow
def test_vla_collect_records_the_teleoperators_part_after_a_checkpoint_drove(tmp_path, capsys) -> None:
    from vla_core.bringup_checkpoint import write_initial_checkpoint

    checkpoint = write_initial_checkpoint(["so101"], tmp_path / "bringup")
    output = tmp_path / "recovery"
    assert vla_main(["collect", "--embodiment", "so101", "--episodes", "1", "--seed", str(SEED),
                     "--recover-with", str(checkpoint), "--handover", "0.5,0.5", "--output", str(output)]) == 0
    assert "1 of 1 episodes written" in capsys.readouterr().out
    (episode,) = load_episodes(output)
    assert episode.metadata["checkpoint"] == str(checkpoint) and episode.metadata["handover_seconds"] == 0.5
    assert episode.metadata["seed"] == SEED and episode.success
    assert episode.task == sample_task("pick_cube", SEED, ("red", "green", "blue")).instruction("training")
    assert episode.timestamps[0] == 0.0 and episode.state.shape == episode.action.shape
