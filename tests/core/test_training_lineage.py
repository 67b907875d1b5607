"""training_lineage: the runs that made a checkpoint, followed back through init_from / encoders_from."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vla_core.training.lineage import training_lineage


def _checkpoint(directory: Path, **train_config: object) -> Path:
    directory.mkdir(parents=True)
    config = {"init_from": None, "encoders_from": "", "output_dir": f"runs/{directory.name}", **train_config}
    metadata = {"step": train_config.get("steps"), "train_config": config}
    (directory / "config.json").write_text(json.dumps({"policy": {}, "metadata": metadata}))
    return directory


def test_stages_come_first_run_first_with_how_each_started(tmp_path: Path) -> None:
    shared = _checkpoint(tmp_path / "shared", steps=10000)
    frozen = _checkpoint(tmp_path / "frozen", steps=6000, encoders_from=str(shared))
    tuned = _checkpoint(tmp_path / "tuned", steps=1500, init_from=str(frozen))
    stages = training_lineage(tuned)
    assert [stage.checkpoint for stage in stages] == [shared, frozen, tuned]
    assert [stage.started_from for stage in stages] == ["", "encoders_from", "init_from"]
    assert [stage.step for stage in stages] == [10000, 6000, 1500]
    assert stages[1].source == str(shared) and not stages[1].source_missing
    assert stages[2].run_directory == Path("runs/tuned")


def test_a_stage_no_longer_on_this_machine_ends_the_walk_and_says_so(tmp_path: Path) -> None:
    tuned = _checkpoint(tmp_path / "tuned", init_from=str(tmp_path / "gone"))
    (stage,) = training_lineage(tuned)
    assert stage.source_missing and stage.source == str(tmp_path / "gone")


def test_checkpoints_naming_each_other_are_refused(tmp_path: Path) -> None:
    first = _checkpoint(tmp_path / "first", init_from=str(tmp_path / "second"))
    _checkpoint(tmp_path / "second", init_from=str(first))
    with pytest.raises(ValueError, match="loop"):
        training_lineage(first)


def test_a_directory_not_saved_by_vla_train_is_refused_by_name(tmp_path: Path) -> None:
    foreign = tmp_path / "lerobot_act"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"type": "act"}))
    with pytest.raises(ValueError, match="lerobot_act.*metadata.train_config"):
        training_lineage(foreign)
