"""One search for profiles and parameter files (vla_core.config_files): package data, then installed
vla_bringup shares; what a parameter file gives a node."""
from __future__ import annotations

from pathlib import Path

import pytest

from vla_core.config_files import config_directories, find_config_file, node_parameters
from vla_core.embodiment import available_embodiments, load_embodiment

ROOT = Path(__file__).resolve().parents[2]


def bringup_share(prefix: Path) -> Path:
    """An ament prefix with an installed vla_bringup's config folder, as colcon lays it out."""
    config = prefix / "share" / "vla_bringup" / "config"
    (config / "embodiments").mkdir(parents=True)
    return config


def test_the_packaged_config_is_the_workspace_config_and_comes_first(monkeypatch, tmp_path) -> None:
    overlay = bringup_share(tmp_path / "overlay")
    (overlay / "policy.yaml").write_text("/**/vla_executor: {ros__parameters: {}}\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "overlay"))
    directories = config_directories()
    assert directories[0].resolve() == (ROOT / "config").resolve()
    assert directories[1:] == [overlay]
    assert find_config_file("policy.yaml").resolve() == (ROOT / "config" / "policy.yaml").resolve()


def test_an_installed_bringup_share_adds_profiles_of_other_robots(monkeypatch, tmp_path) -> None:
    overlay = bringup_share(tmp_path / "overlay")
    text = (ROOT / "config" / "embodiments" / "so101.yaml").read_text().replace("name: so101", "name: my_arm")
    (overlay / "embodiments" / "my_arm.yaml").write_text(text)
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{tmp_path / 'missing'}:{tmp_path / 'overlay'}")
    assert {"so101", "aloha", "my_arm"} <= set(available_embodiments())
    spec = load_embodiment("my_arm")
    assert spec.name == "my_arm" and spec.source == str(overlay / "embodiments" / "my_arm.yaml")


def test_a_missing_file_names_what_was_searched(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"no config/embodiments/nope\.yaml .*searched \[.*config"):
        find_config_file("embodiments/nope.yaml")
    with pytest.raises(FileNotFoundError, match="no embodiment profile named 'nope'; available: .*so101"):
        load_embodiment("nope")


def test_node_parameters_merge_the_wildcard_and_the_node_sections_in_file_order(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("/**: {ros__parameters: {use_sim_time: true, rate: 1}}\n"
                    "/**/vla_executor: {ros__parameters: {rate: 30}}\n"
                    "vla_policy: {ros__parameters: {checkpoint: x}}\n")
    assert node_parameters(path, "vla_executor") == {"use_sim_time": True, "rate": 30}
    assert node_parameters(path, "vla_policy") == {"use_sim_time": True, "rate": 1, "checkpoint": "x"}
    with pytest.raises(ValueError, match="has no section for vla_recorder"):
        node_parameters(path, "vla_recorder")
    path.write_text("a: [")
    with pytest.raises(ValueError, match="is not a readable parameter file"):
        node_parameters(path, "vla_policy")
