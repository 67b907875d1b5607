"""The MuJoCo pick scene, the JTC-like trajectory follower, the tasks and the scripted teleoperator."""
from __future__ import annotations

import numpy as np
import pytest

from vla_core.embodiment import load_embodiment
from vla_core.kinematics import RobotKinematics
from vla_core.sim.pick_scene import MIN_CUBE_DISTANCE, PLACEMENT_X, PLACEMENT_Y, PickCubeScene
from vla_core.sim.scripted_pick import JAW_AXIS, ScriptedPickTeleop
from vla_core.sim.teleop import UnreachableCube
from vla_core.sim.tasks import HELD_OUT_WORDINGS, PickTask, sample_pick_task
from vla_core.sim.trajectory_follower import TrajectoryFollower, TrajectoryRejected


@pytest.fixture(scope="module")
def scene() -> PickCubeScene:
    scene = PickCubeScene(image_size=64)
    yield scene
    scene.close()


@pytest.fixture(scope="module")
def kinematics() -> RobotKinematics:
    return RobotKinematics(load_embodiment("so101"))


def cube_positions(scene: PickCubeScene) -> np.ndarray:
    return np.array([scene.cube(colour).position for colour in scene.colours])


def test_resets_are_seeded_apart_and_in_reach(scene) -> None:
    scene.reset(7)
    first = cube_positions(scene)
    scene.step(0.5)
    scene.reset(7)
    np.testing.assert_allclose(cube_positions(scene), first)
    scene.reset(8)
    assert not np.allclose(cube_positions(scene), first)
    for seed in range(20):
        scene.reset(seed)
        xy = cube_positions(scene)[:, :2]
        assert np.all((xy[:, 0] >= PLACEMENT_X[0]) & (xy[:, 0] <= PLACEMENT_X[1]))
        assert np.all((xy[:, 1] >= PLACEMENT_Y[0]) & (xy[:, 1] <= PLACEMENT_Y[1]))
        gaps = [np.linalg.norm(a - b) for i, a in enumerate(xy) for b in xy[i + 1:]]
        assert min(gaps) >= MIN_CUBE_DISTANCE


def test_cameras_render_the_scene(scene) -> None:
    scene.reset(0)
    front, wrist = scene.render("front"), scene.render("wrist")
    assert front.shape == wrist.shape == (64, 64, 3) and front.dtype == np.uint8
    assert front.std() > 5 and wrist.std() > 5 and not np.array_equal(front, wrist)
    assert scene.camera_intrinsics("front")[0, 0] > 0


def test_cubes_rest_until_something_lifts_them(scene) -> None:
    scene.reset(3)
    scene.step(1.0)
    assert not any(scene.lifted(colour) for colour in scene.colours)


def test_trajectory_follower_interpolates_like_a_joint_trajectory_controller() -> None:
    follower = TrajectoryFollower(np.zeros(2))
    follower.replace(start=10.0, times_from_start=np.array([1.0, 2.0]), points=np.array([[1.0, 2.0], [3.0, 2.0]]),
                     now=10.0)
    np.testing.assert_allclose(follower.target(9.0), [0.0, 0.0])  # before its start: where it starts from
    np.testing.assert_allclose(follower.target(10.5), [0.5, 1.0])
    np.testing.assert_allclose(follower.target(11.5), [2.0, 2.0])
    np.testing.assert_allclose(follower.target(20.0), [3.0, 2.0])
    follower.replace(start=11.5, times_from_start=np.array([1.0]), points=np.array([[0.0, 0.0]]), now=11.5)
    np.testing.assert_allclose(follower.target(12.0), [1.0, 1.0])  # from where the old one was, not a jump


@pytest.mark.parametrize("times, points, message", [
    ([1.0, 1.0], [[0, 0], [1, 1]], "increase"),
    ([1.0], [[0, 0, 0]], "2 joints"),
    ([1.0], [[np.nan, 0]], "NaN"),
])
def test_trajectory_follower_refuses_bad_trajectories(times, points, message) -> None:
    with pytest.raises(ValueError, match=message):
        TrajectoryFollower(np.zeros(2)).replace(0.0, np.array(times), np.array(points, dtype=float), 0.0)


def test_trajectory_follower_rejects_a_trajectory_ending_in_the_past_like_ros2_controllers() -> None:
    """A sender stamping its own `now` whose clock is 2 ticks behind (or whose message took that
    long): a one-tick trajectory already ended, so the controller drops it and keeps the old one;
    the same command stamped zero starts on receipt."""
    dt, now = 1 / 30, 100.0
    follower = TrajectoryFollower(np.zeros(2))
    follower.replace(now, np.array([dt]), np.array([[0.1, 0.1]]), now)
    with pytest.raises(TrajectoryRejected, match="ends in the past"):
        follower.replace(now - 2 * dt, np.array([dt]), np.array([[0.5, 0.5]]), now)
    np.testing.assert_allclose(follower.target(now + dt), [0.1, 0.1])  # the previous trajectory goes on
    stamp = 0.0  # zero: on receipt
    follower.replace(stamp if stamp > 0 else now, np.array([dt]), np.array([[0.5, 0.5]]), now)
    np.testing.assert_allclose(follower.target(now + dt), [0.5, 0.5])


def test_tasks_have_a_training_wording_and_held_out_paraphrases() -> None:
    task = PickTask("red")
    assert task.instruction() == "pick up the red cube"
    paraphrases = {task.instruction("held_out", seed) for seed in range(len(HELD_OUT_WORDINGS))}
    assert len(paraphrases) == len(HELD_OUT_WORDINGS) and task.instruction() not in paraphrases
    assert all("red" in sentence for sentence in paraphrases)
    with pytest.raises(ValueError, match="wording"):
        task.instruction("casual")
    assert sample_pick_task(4, ("red", "green", "blue")) == sample_pick_task(4, ("red", "green", "blue"))
    assert {sample_pick_task(s, ("red", "green", "blue")).colour for s in range(30)} == {"red", "green", "blue"}


def test_pointing_ik_meets_position_and_axis_and_leaves_the_roll_free(kinematics) -> None:
    state = np.array([0.0, -1.0, 1.0, 0.6, 0.0, 0.0])
    direction = np.array([np.cos(3.54), np.sin(3.54), 0.0])  # jaws across a cube turned 0.4 rad
    result = kinematics.inverse_pointing(0, np.array([0.22, 0.03, 0.02]), JAW_AXIS, direction, state)
    assert result.converged and result.position_error < 1e-4 and result.orientation_error < 1e-3
    # the same point with the jaws turned 0.4 rad the other way needs more wrist roll than the joint has
    beyond = kinematics.inverse_pointing(0, np.array([0.22, 0.03, 0.02]), JAW_AXIS, -direction, state)
    assert not beyond.converged and beyond.orientation_error > 0.05
    pose = kinematics.forward(np.r_[result.joints, 0.0])[0]
    np.testing.assert_allclose(pose[:3, 3], [0.22, 0.03, 0.02], atol=1e-4)
    np.testing.assert_allclose(pose[:3, :3] @ JAW_AXIS, direction, atol=1e-3)
    full = kinematics.inverse(0, pose, state)  # the same pose is a reachable full 6-D target
    assert full.position_error < 1e-3


def test_scripted_teleoperator_picks_the_cube_at_least_95_percent(scene, kinematics) -> None:
    """It holds the cube between the pads: the jaws stop at its faces (about 0.31 rad) instead of
    closing past them with the cube squeezed up out of the pads (soft cube contacts did that)."""
    teleop = ScriptedPickTeleop(kinematics, rate_hz=30.0)
    period, successes, seeds, jaws = 1.0 / 30.0, 0, range(20), []
    for seed in seeds:
        scene.reset(seed)
        task = sample_pick_task(seed, scene.colours)
        plan = teleop.plan(scene.joint_positions(), scene.cube(task.colour).position, scene.cube_yaw(task.colour),
                           np.random.default_rng(seed))
        follower = TrajectoryFollower(scene.joint_positions())
        for row in plan.joints:  # what the simulation node does with each single-point JointTrajectory
            follower.replace(scene.time, np.array([period]), row[None], scene.time)
            for _ in range(5):
                scene.command(follower.target(scene.time))
                scene.step(period / 5)
        successes += scene.lifted(task.colour)
        if scene.lifted(task.colour):
            jaws.append(scene.joint_positions()[-1])
    assert successes >= 0.95 * len(seeds)
    assert min(jaws) > 0.25, jaws


def test_a_plans_approach_ends_where_its_jaws_start_to_close(scene, kinematics) -> None:
    teleop = ScriptedPickTeleop(kinematics)
    open_jaws, _ = kinematics.gripper_positions(kinematics.spec.arms[0])
    for seed in (0, 1, 2):
        scene.reset(seed)
        plan = teleop.plan(scene.joint_positions(), scene.cube("red").position, scene.cube_yaw("red"),
                           np.random.default_rng(seed))
        jaws = plan.joints[:, -1]
        assert 0 < plan.approach_rows < len(plan.joints)
        np.testing.assert_allclose(jaws[plan.approach_rows - 1], open_jaws)  # open at the grasp
        assert jaws[plan.approach_rows] < open_jaws  # the next row begins to close


@pytest.mark.parametrize("embodiment", ["so101", "aloha"])
def test_the_teleoperator_opens_and_closes_the_jaws_where_the_profile_does(embodiment) -> None:
    """A policy's binary gripper channel is decoded to the profile's open and closed positions:
    demonstrations that open the jaws elsewhere would teach a grasp the policy cannot execute.
    And the robot starts with its jaws open, so no reaching frame is labelled closed: a policy
    taught that shut its jaws harder than any demonstration and opened them late, beside the cube."""
    from vla_core.data.eef_pose import gripper_closed
    from vla_core.sim.factory import make_scene, make_teleop
    from vla_core.sim.rollout import plan_task

    spec = load_embodiment(embodiment)
    teleop = make_teleop(spec)
    scene = make_scene(embodiment, "pick_cube", 64)
    try:
        scene.reset(0)
        task = sample_pick_task(0, scene.colours)
        plan = plan_task(scene, task, teleop, np.random.default_rng(0))
        arm = teleop.arm_for(scene.cube(task.colour).position)
    finally:
        scene.close()
    jaws = plan.joints[:, spec.joint_names.index(spec.arms[arm].gripper_joint)]
    opened, closed = teleop.kinematics.gripper_positions(spec.arms[arm])
    assert jaws[plan.approach_rows - 1] == pytest.approx(opened)  # open around the cube
    assert jaws[-1] == pytest.approx(closed)  # squeezing it, lifted
    assert not gripper_closed(teleop.kinematics, arm, jaws[:plan.approach_rows]).any()  # open all the reach


@pytest.mark.parametrize("yaw_error, offset", [(np.pi / 4, 0.0), (0.0, 0.015)])
def test_the_open_jaws_take_the_cube_from_an_imprecise_approach(scene, kinematics, yaw_error, offset) -> None:
    """The jaws open wide enough that a grasp planned for the cube turned 45 degrees off its faces,
    or 1.5 cm off its centre, still lifts it: a policy is not more precise than that from its
    96 px view (with the jaws open 4.3 cm around the 3 cm cube, 0 and 4 of these 8 grasps did)."""
    from vla_core.sim.rollout import play_plan

    teleop = ScriptedPickTeleop(kinematics)
    lifted = 0
    for seed in range(8):
        scene.reset(seed)
        task = sample_pick_task(seed, scene.colours)
        cube = scene.cube(task.colour).position + offset * np.array([np.cos(seed), np.sin(seed), 0.0])
        plan = teleop.plan(scene.joint_positions(), cube, scene.cube_yaw(task.colour) + yaw_error,
                           np.random.default_rng(seed))
        lifted += play_plan(scene, task, plan, teleop.rate_hz).success
    assert lifted >= 7, f"{lifted} of 8 lifted"


def test_demonstrations_vary_with_the_seed(scene, kinematics) -> None:
    teleop = ScriptedPickTeleop(kinematics)
    scene.reset(0)
    plans = [teleop.plan(scene.joint_positions(), scene.cube("red").position, scene.cube_yaw("red"),
                         np.random.default_rng(seed)) for seed in (1, 1, 2)]
    np.testing.assert_array_equal(plans[0].joints, plans[1].joints)
    assert plans[0].joints.shape != plans[2].joints.shape or not np.allclose(plans[0].joints, plans[2].joints)


def test_a_cube_out_of_reach_is_refused_by_position(kinematics) -> None:
    with pytest.raises(UnreachableCube, match="0.9"):
        ScriptedPickTeleop(kinematics).plan(np.zeros(6), np.array([0.9, 0.0, 0.015]), 0.0, np.random.default_rng(0))
