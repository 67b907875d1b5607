"""Policy sets (vla_core.policy_set): one checkpoint per embodiment behind one directory name,
served through the backend interface exactly as the member checkpoints are on their own."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vla_core.backends import BackendError, backend_kind, load_backends
from vla_core.checkpoint import CheckpointError
from vla_core.embodiment import load_embodiment
from vla_core.model.batching import Observation
from vla_core.model.policy import VLAPolicy
from vla_core.policy_set import member_for, read_policy_set, served_embodiments, write_policy_set


@pytest.fixture(scope="module")
def policy_set(tmp_path_factory):
    """A set of two bring-up checkpoints with different weights (seeds), one per robot."""
    from vla_core.bringup_checkpoint import write_initial_checkpoint

    root = tmp_path_factory.mktemp("set") / "default"
    write_initial_checkpoint(["so101"], root / "so101", seed=1)
    write_initial_checkpoint(["aloha"], root / "aloha", seed=2)
    return write_policy_set(root, {"so101": "so101", "aloha": "aloha"})


def _observation(spec, seed: int) -> Observation:
    rng = np.random.default_rng(seed)
    images = {c.name: rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8) for c in spec.cameras}
    state = rng.uniform(-0.3, 0.3, spec.state_dim)
    from vla_core.kinematics import RobotKinematics

    return Observation(images[spec.main_camera.name], state, {c.name: images[c.name] for c in spec.wrist_cameras},
                       tool_poses=RobotKinematics(spec).forward(state), joint_velocity=np.zeros_like(state))


def test_each_embodiment_is_served_by_its_own_member_bit_for_bit(policy_set) -> None:
    """Through the set, a robot's chunks are exactly its member's: the node and `vla eval` name the
    set, and each robot gets the checkpoint trained for it alone."""
    specs = [load_embodiment("so101"), load_embodiment("aloha")]
    backends = load_backends(str(policy_set), specs)
    assert backend_kind(policy_set) == "set" and sorted(backends) == ["aloha", "so101"]
    for spec in specs:
        alone = VLAPolicy.from_pretrained(policy_set / spec.name)
        observation = _observation(spec, 3)
        expected = alone.predict_chunk(observation, "pick up the red cube", spec.name, None, seed=5)
        got = backends[spec.name].predict_chunk(observation, "pick up the red cube", None, seed=5)
        assert np.array_equal(got.actions, expected.actions)
        assert sorted(backends[spec.name].policy.embodiments) == [spec.name]


def test_the_served_embodiments_are_the_sets_keys_or_the_checkpoints_own(policy_set) -> None:
    assert served_embodiments(policy_set) == ["aloha", "so101"]
    assert served_embodiments(policy_set / "so101") == ["so101"]
    assert member_for(policy_set, "aloha") == policy_set / "aloha"
    assert member_for(policy_set / "so101", "so101") == policy_set / "so101"


def test_an_embodiment_the_set_does_not_hold_is_refused_by_name(tmp_path, policy_set) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(policy_set / "so101", partial / "so101")
    write_policy_set(partial, {"so101": "so101"})
    with pytest.raises(BackendError, match=r"holds checkpoints for \['so101'\], not for embodiment 'aloha'") as refused:
        load_backends(str(partial), [load_embodiment("aloha")])
    assert refused.value.cause == "bad_checkpoint"


def test_a_set_is_not_loaded_as_one_policy(policy_set) -> None:
    """Training (`init_from`, `encoders_from`) and the probes load one policy: a set is refused with
    what to do instead, not with a missing config.json."""
    with pytest.raises(CheckpointError, match="is a policy set .* load the member of the embodiment wanted"):
        VLAPolicy.from_pretrained(policy_set)


@pytest.mark.parametrize("members, problem", [
    ("[1, 2]", "expected an object of embodiment name -> checkpoint subdirectory"),
    ('{"so101": "../elsewhere"}', "must be a subdirectory of the set"),
    ('{"so101": "/abs"}', "must be a subdirectory of the set"),
    ('{"so101": "absent"}', "does not exist"),
    ("{not json", "not readable as JSON"),
])
def test_a_malformed_policies_file_is_refused_naming_the_file(tmp_path, members, problem) -> None:
    (tmp_path / "policies.json").write_text(members)
    with pytest.raises(CheckpointError, match=problem) as refused:
        read_policy_set(tmp_path)
    assert str(tmp_path / "policies.json") in str(refused.value)


def test_a_set_inside_a_set_is_refused(tmp_path, policy_set) -> None:
    shutil.copytree(policy_set, tmp_path / "outer" / "inner")
    (tmp_path / "outer" / "policies.json").write_text(json.dumps({"so101": "inner"}))
    with pytest.raises(BackendError, match="is a policy set inside the set"):
        load_backends(str(tmp_path / "outer"), [load_embodiment("so101")])
    with pytest.raises(CheckpointError, match="is a policy set inside the set"):  # for every reader, not only serving
        member_for(tmp_path / "outer", "so101")
