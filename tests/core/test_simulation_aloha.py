"""The ALOHA scene, the bin task on both robots, the scripted teleoperators through the rollout,
and `vla collect` writing a LeRobot v3.0 dataset."""
from __future__ import annotations

import numpy as np
import pytest

from vla_core.cli import main as vla_main
from vla_core.data.lerobot_v3 import load_episodes
from vla_core.embodiment import load_embodiment
from vla_core.sim.aloha_scene import CAMERAS, GRIPPER_CLOSED, PLACEMENT_X, PLACEMENT_Y, AlohaScene
from vla_core.sim.factory import make_scene, make_teleop
from vla_core.sim.rollout import run_scripted_episode
from vla_core.sim.tasks import BIN_HELD_OUT_WORDINGS, BinTask, PickTask, sample_task


@pytest.fixture(scope="module")
def aloha() -> AlohaScene:
    scene = AlohaScene(image_size=64, with_bin=True)
    yield scene
    scene.close()


@pytest.fixture(scope="module")
def aloha_spec():
    return load_embodiment("aloha")


def test_aloha_scene_matches_its_profile_and_places_cubes_by_seed(aloha, aloha_spec) -> None:
    assert aloha.joint_names == aloha_spec.joint_names
    assert set(CAMERAS) == {camera.name for camera in aloha_spec.cameras}
    aloha.reset(4)
    first = np.array([aloha.cube(c).position for c in aloha.colours])
    aloha.reset(4)
    np.testing.assert_allclose([aloha.cube(c).position for c in aloha.colours], first)
    for seed in range(10):
        aloha.reset(seed)
        for colour in aloha.colours:
            x, y, z = aloha.cube(colour).position
            assert PLACEMENT_X[0] <= x <= PLACEMENT_X[1] and PLACEMENT_Y[0] <= y <= PLACEMENT_Y[1]
            assert np.abs(aloha.cube(colour).position[:2] - aloha.bin_position[:2]).max() > 0.05  # not in the bin
        assert not any(aloha.in_bin(colour) for colour in aloha.colours)


def test_aloha_cameras_render_three_different_views(aloha) -> None:
    aloha.reset(0)
    frames = [aloha.render(camera) for camera in CAMERAS]
    assert all(frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5 for frame in frames)
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])
    with pytest.raises(ValueError, match="front"):
        aloha.render("front")


def test_one_gripper_value_drives_both_aloha_fingers(aloha) -> None:
    aloha.reset(0)
    target = aloha.joint_positions()
    right_gripper = aloha.joint_names.index("vx300s_right/left_finger")
    target[right_gripper] = GRIPPER_CLOSED
    aloha.command(target)
    aloha.step(1.0)
    mirror = aloha.data.joint("vx300s_right/right_finger").qpos[0]
    assert aloha.joint_positions()[right_gripper] == pytest.approx(GRIPPER_CLOSED, abs=2e-3)
    assert mirror == pytest.approx(-GRIPPER_CLOSED, abs=2e-3)  # the unlisted finger follows, mirrored
    with pytest.raises(ValueError, match="14 targets"):
        aloha.command(np.zeros(6))


def test_in_bin_needs_the_cube_resting_inside_the_bin(aloha) -> None:
    aloha.reset(1)
    address = aloha.model.joint("cube_red").qposadr[0]
    resting = aloha.table_height + aloha.cube_half_size

    def drop_at(x: float, y: float, z: float) -> bool:
        aloha.data.qpos[address: address + 7] = [x, y, z, 1, 0, 0, 0]
        aloha.data.qvel[aloha.model.joint("cube_red").dofadr[0]: aloha.model.joint("cube_red").dofadr[0] + 6] = 0
        aloha.step(0.5)
        return aloha.in_bin("red")

    centre = aloha.bin_position
    assert drop_at(centre[0] + 0.02, centre[1] - 0.02, resting + 0.01)
    assert not drop_at(centre[0] + 0.08, centre[1], resting + 0.01)  # beside the bin
    aloha.data.qpos[address: address + 7] = [centre[0], centre[1], resting + 0.1, 1, 0, 0, 0]
    assert not aloha.in_bin("red")  # above the bin, not resting in it


def test_bin_task_words_and_success() -> None:
    task = BinTask("green")
    assert task.instruction() == "put the green cube in the bin" and task.needs_bin and not PickTask.needs_bin
    paraphrases = {task.instruction("held_out", seed) for seed in range(len(BIN_HELD_OUT_WORDINGS))}
    assert len(paraphrases) == len(BIN_HELD_OUT_WORDINGS) and task.instruction() not in paraphrases
    assert all("green" in sentence for sentence in paraphrases)
    assert sample_task("cube_in_bin", 3, ("red", "green")) == sample_task("cube_in_bin", 3, ("red", "green"))
    with pytest.raises(ValueError, match="stack_cubes"):
        sample_task("stack_cubes", 0, ("red",))
    with pytest.raises(ValueError, match="no simulated scene for embodiment 'panda'"):
        make_scene("panda", "pick_cube")
    with pytest.raises(ValueError, match="this scene has no bin"):
        make_scene("so101", "pick_cube", 64).in_bin("red")


def success_rate(embodiment: str, task_name: str, seeds: range) -> tuple[float, set[int]]:
    scene = make_scene(embodiment, task_name, 64)
    teleop = make_teleop(load_embodiment(embodiment))
    successes, arms = 0, set()
    try:
        for seed in seeds:
            task = sample_task(task_name, seed, scene.colours)
            successes += run_scripted_episode(scene, task, teleop, seed).success
            arms.add(teleop.arm_for(scene.cube(task.colour).position))
    finally:
        scene.close()
    return successes / len(seeds), arms


@pytest.mark.slow
def test_aloha_scripted_pick_succeeds_with_both_arms() -> None:
    rate, arms = success_rate("aloha", "pick_cube", range(12))
    assert rate >= 0.95 and arms == {0, 1}


@pytest.mark.slow
@pytest.mark.parametrize("embodiment", ["aloha", "so101"])
def test_scripted_cube_in_bin(embodiment: str) -> None:
    rate, _ = success_rate(embodiment, "cube_in_bin", range(10))
    assert rate >= 0.95


def test_rollout_records_state_action_and_frames_at_the_control_rate(aloha_spec) -> None:
    scene = make_scene("aloha", "pick_cube", 32)
    teleop = make_teleop(aloha_spec)
    try:
        task = sample_task("pick_cube", 2, scene.colours)
        rollout = run_scripted_episode(scene, task, teleop, 2, cameras=("top",))
    finally:
        scene.close()
    count = len(rollout.timestamps)
    np.testing.assert_allclose(np.diff(rollout.timestamps), 1 / aloha_spec.control_rate_hz)
    assert rollout.state.shape == rollout.action.shape == (count, 14)
    assert rollout.images["top"].shape == (count, 32, 32, 3) and set(rollout.images) == {"top"}
    # the measured joints follow the commands one control period later, with servo lag
    lag = np.abs(rollout.state[1:, :6] - rollout.action[:-1, :6]).max(axis=1)
    assert np.median(lag) < 0.05 and rollout.success


def test_a_disturbed_rollout_records_the_undisturbed_commands_from_displaced_states(aloha_spec) -> None:
    """DART: the robot executes command + noise, the dataset keeps the teleoperator's command."""
    scene = make_scene("aloha", "pick_cube", 32)
    teleop = make_teleop(aloha_spec)
    try:
        task = sample_task("pick_cube", 3, scene.colours)
        clean = run_scripted_episode(scene, task, teleop, 3)
        disturbed = run_scripted_episode(scene, task, teleop, 3, disturbance=0.03)
        with pytest.raises(ValueError, match="disturbance is a standard deviation"):
            run_scripted_episode(scene, task, teleop, 3, disturbance=-0.01)
    finally:
        scene.close()
    np.testing.assert_array_equal(disturbed.action, clean.action)
    grippers = [list(aloha_spec.joint_names).index(arm.gripper_joint) for arm in aloha_spec.arms]
    arm_joints = [column for column in range(aloha_spec.state_dim) if column not in grippers]
    displacement = np.abs(disturbed.state[:, arm_joints] - clean.state[:, arm_joints]).max(axis=1)
    assert displacement[0] == 0  # the disturbance ramps in from the reset state
    assert np.median(displacement) > 0.02  # the arm drifted off the path for most of the episode
    assert displacement.max() < 0.3  # of the injected size (0.03 rad standard deviation), not a runaway


@pytest.mark.slow
def test_vla_collect_writes_the_successful_demonstrations(tmp_path, capsys) -> None:
    output = tmp_path / "dataset"
    assert vla_main(["collect", "--embodiment", "aloha", "--task", "pick_cube", "--episodes", "2", "--seed", "7",
                     "--output", str(output)]) == 0
    assert "2 of 2 episodes written" in capsys.readouterr().out
    episodes = load_episodes(output)
    assert len(episodes) == 2
    for seed, episode in zip((7, 8), episodes):
        assert episode.task == sample_task("pick_cube", seed, ("red", "green", "blue")).instruction("training")
        assert set(episode.images) == set(CAMERAS) and episode.images["top"].shape[1:] == (224, 224, 3)
        assert episode.fps == 50 and episode.state.shape == episode.action.shape == (len(episode), 14)
        gripper = list(load_embodiment("aloha").joint_names).index("vx300s_left/left_finger")
        assert np.ptp(episode.action[:, gripper]) > 0 or np.ptp(episode.action[:, gripper + 7]) > 0  # it grasped
    assert vla_main(["collect", "--embodiment", "aloha", "--episodes", "0", "--output", str(tmp_path / "x")]) == 2
    assert "--episodes must be >= 1" in capsys.readouterr().err
    assert vla_main(["collect", "--episodes", "1", "--disturbance", "0.03", "--recover-with", "checkpoints/default",
                     "--output", str(tmp_path / "y")]) == 2
    assert "use one or the other" in capsys.readouterr().err
