"""Embodiment profiles: the shipped ones load, the text prompt is Qwen-VLA's, bad fields are named."""
from __future__ import annotations

import copy
from pathlib import Path

import mujoco
import pytest
import yaml

from vla_core.embodiment import EmbodimentSpec, ProfileError, available_embodiments, load_embodiment

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_profiles_load_with_their_real_model_files() -> None:
    assert {"so101", "aloha"} <= set(available_embodiments())
    so101, aloha = load_embodiment("so101"), load_embodiment("aloha")
    assert so101.robot_model_path().suffix == ".urdf" and aloha.robot_model_path().suffix == ".xml"
    assert (so101.state_dim, so101.action_dim) == (6, 10)  # 5 joints + gripper; xyz + rot6d + gripper
    assert (aloha.state_dim, aloha.action_dim) == (14, 20)
    assert aloha.is_bimanual and not so101.is_bimanual
    assert [c.name for c in aloha.wrist_cameras] == ["left_wrist", "right_wrist"] and aloha.main_camera.name == "top"
    assert aloha.gripper_channels == (9, 19)
    urdf_text = so101.robot_model_path().read_text()
    assert all(f'<joint name="{joint}"' in urdf_text for joint in so101.joint_names)
    model = mujoco.MjModel.from_xml_path(str(aloha.robot_model_path()))
    model_joints = {model.joint(i).name for i in range(model.njnt)}
    assert set(aloha.joint_names) <= model_joints


def test_text_prompt_is_qwen_vla_template() -> None:
    assert load_embodiment("so101").text_prompt("pick up the red cube") == (
        "The robot is SO-101 with single arm. The control frequency is 30 Hz. Please predict the next 16 "
        "control actions to execute the following task: pick up the red cube"
    )
    assert load_embodiment("aloha").text_prompt(" hand over the cube ") == (
        "The robot is ALOHA bimanual ViperX with dual arms. The control frequency is 50 Hz. Please predict "
        "the next 16 control actions to execute the following task: hand over the cube"
    )


def test_dict_round_trip() -> None:
    aloha = load_embodiment("aloha")
    assert EmbodimentSpec.from_dict(yaml.safe_load(yaml.safe_dump(aloha.to_dict()))) == aloha


BASE = yaml.safe_load((ROOT / "config" / "embodiments" / "so101.yaml").read_text())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"action_space": "polar"}, "field 'action_space' must be one of"),
        ({"control_rate_hz": 0}, "field 'control_rate_hz' must be a number > 0, got 0"),
        ({"chunk_size": 0}, "field 'chunk_size' must be an integer >= 1, got 0"),
        ({"colour": "red"}, r"unknown field\(s\) \['colour'\]"),
        ({"cameras": [{"name": "c", "topic": "/c", "role": "side"}]}, r"field 'cameras\[0\].role' must be one of"),
        ({"cameras": [{"name": "c", "topic": "/c", "role": "wrist"}]}, "exactly one camera of role 'main'"),
        ({"arms": []}, "field 'arms' must be a list of one or two arms"),
    ],
)
def test_each_bad_field_is_named_with_the_file(tmp_path: Path, change: dict, message: str) -> None:
    data = copy.deepcopy(BASE)
    data.update(change)
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=message) as error:
        load_embodiment(path)
    assert str(path) in str(error.value)


def test_missing_profile_and_model_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no embodiment profile named 'nope'; available: .*so101"):
        load_embodiment("nope")
    data = dict(BASE, robot_model="pkg://not_a_package/robot.urdf")
    with pytest.raises(FileNotFoundError, match="Python package 'not_a_package' is not installed"):
        EmbodimentSpec.from_dict(data).robot_model_path()
