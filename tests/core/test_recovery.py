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
from vla_core.seeds import RECOVERY
from vla_core.sim.factory import make_teleop
from vla_core.sim.tasks import sample_task

SEED = RECOVERY.start


@pytest.fixture(scope="module")
def spec():
    return load_embodiment("so101")


@pytest.fixture(scope="module")
def oracle_loop(spec):
    loop = ClosedLoop(sim_task("so101", "pick_cube"), spec, ScriptedOracle(spec), ExecutionSettings(), latency=0.05)
    yield loop
    loop.close()


def test_the_teleoperator_finishes_from_where_the_policy_left_the_arm(spec, oracle_loop) -> None:
    """Handed over at the bottom of the oracle's descent (jaws open around the cube), the
    teleoperator closes in from there: no backing off to start over, which would teach a policy
    at the cube to leave it."""
    camera = spec.main_camera.name
    home = oracle_loop.scene.home.copy()
    rollout = run_recovery_episode(oracle_loop, make_teleop(spec), SEED, 2.6, (camera,))
    assert rollout is not None and rollout.success  # the oracle had not finished: there is a recovery
    assert np.abs(rollout.state[0] - home).max() > 0.3, "the demonstration starts where the policy left the arm"
    assert rollout.images[camera].shape[0] == len(rollout.timestamps) == len(rollout.state)
    kinematics = RobotKinematics(spec)
    start = kinematics.forward(rollout.state[0])[0][2, 3]
    height = np.array([kinematics.forward(row)[0][2, 3] for row in rollout.action])
    closing = int(np.argmax(rollout.action[:, -1] < 0.0))  # the first command closing the jaws
    assert 0 < closing < spec.control_rate_hz and height[:closing].max() < start + 0.005


def _arm_at(teleop, row: np.ndarray, tool: np.ndarray, jaws: np.ndarray) -> np.ndarray:
    placed = row.copy()
    placed[:5] = teleop.solve(0, tool, jaws, row)
    return placed


def test_a_tool_low_beside_the_cube_first_rises_and_one_above_it_goes_straight_down(spec, oracle_loop) -> None:
    scene, teleop, kinematics = oracle_loop.scene, make_teleop(spec, tremor=0.0), RobotKinematics(spec)
    scene.reset(SEED)
    task = sample_task("pick_cube", SEED, scene.colours)
    cube, yaw = scene.cube(task.colour).position, scene.cube_yaw(task.colour)
    grasp, jaws = teleop.grasp(0, scene.joint_positions(), cube, yaw)
    rng = np.random.default_rng(0)
    beside = _arm_at(teleop, scene.joint_positions(), grasp + [0.0, 0.04, 0.0], jaws)  # 4 cm off, at grasp height
    tool = np.array([kinematics.forward(row)[0][:3, 3] for row in teleop.plan(beside, cube, yaw, rng).joints[:12]])
    start = kinematics.forward(beside)[0][:3, 3]
    assert np.all(np.diff(tool[:, 2]) > -1e-4) and tool[-1, 2] - start[2] > 0.02  # straight up first,
    assert np.linalg.norm(tool[:, :2] - start[:2], axis=1).max() < 0.005  # not sideways through the cube
    above = _arm_at(teleop, scene.joint_positions(), grasp + [0.005, 0.0, 0.03], jaws)  # in the descent column
    plan = teleop.plan(above, cube, yaw, np.random.default_rng(0))
    tool = np.array([kinematics.forward(row)[0][:3, 3] for row in plan.joints])
    closing = int(np.argmax(plan.joints[:, -1] < 0.0))
    assert np.all(np.diff(tool[:closing, 2]) < 1e-4)  # down, never up, until the jaws close
    np.testing.assert_allclose(tool[closing - 1], grasp, atol=0.003)


def test_a_plan_from_the_home_pose_is_the_scripted_demonstrations_plan(spec, oracle_loop) -> None:
    """Every scripted demonstration starts at home, far from any grasp: it opens with a joint move
    above the cube (a straight line in joint space), no rise and no shortcut, so recorded
    datasets stay what they were."""
    scene, teleop = oracle_loop.scene, make_teleop(spec, tremor=0.0)
    for seed in range(3):
        scene.reset(seed)
        task = sample_task("pick_cube", seed, scene.colours)
        home = scene.joint_positions()
        plan = teleop.plan(home, scene.cube(task.colour).position, scene.cube_yaw(task.colour),
                           np.random.default_rng(seed))
        moves = plan.joints[:30, :5] - home[:5]  # the joint move lasts at least 1.28 s (38 ticks)
        direction = moves[-1] / np.linalg.norm(moves[-1])
        cosines = moves @ direction / np.linalg.norm(moves, axis=1)
        assert np.all(cosines > 0.9999)


def test_a_policy_that_already_succeeded_leaves_nothing_to_record(spec, oracle_loop) -> None:
    assert run_recovery_episode(oracle_loop, make_teleop(spec), SEED, 12.0, (spec.main_camera.name,)) is None


def test_handover_times_are_drawn_in_the_window_by_seed() -> None:
    window = HandoverWindow(1.0, 10.0)
    draws = [window.draw(seed) for seed in RECOVERY[:200]]
    assert all(1.0 <= t <= 10.0 for t in draws) and np.ptp(draws) > 7.0
    assert draws == [window.draw(seed) for seed in RECOVERY[:200]]
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
