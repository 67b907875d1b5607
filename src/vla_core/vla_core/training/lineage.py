"""Which training runs made a checkpoint: its own run and the runs it started from.

A checkpoint's `config.json` keeps the training config of the run that saved it
(`metadata.train_config`), and that config names what the run started from: `init_from` (all the
weights of another checkpoint) or `encoders_from` (its observation encoders only). Following those
names back gives the checkpoint's stages, first run first, which is what a model card has to tell
about a policy trained in stages (`scripts/write_model_card.py`). A stage whose checkpoint is no
longer on this machine ends the walk, and says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_core.checkpoint import CONFIG_FILE

MAX_STAGES = 32  # a longer chain is a loop of checkpoints naming each other, not a training history


@dataclass(frozen=True)
class TrainingStage:
    """One run of `vla train` in a checkpoint's history.

    `step` is the training step the checkpoint was saved at; `started_from` is how the run began:
    "init_from", "encoders_from" or "" (from scratch); `source` is the checkpoint it began from, and
    `source_missing` is set when that checkpoint is not here.
    """

    checkpoint: Path
    train_config: dict[str, Any]
    step: int | None
    started_from: str
    source: str
    source_missing: bool

    @property
    def run_directory(self) -> Path:
        """Where the run wrote its metrics (`output_dir`), relative paths as the run saw them."""
        return Path(self.train_config["output_dir"])


def _saved_run(checkpoint: Path) -> tuple[dict[str, Any], int | None]:
    """The training config and step `vla train` saved in the checkpoint's config.json."""
    path = checkpoint / CONFIG_FILE
    try:
        metadata = json.loads(path.read_text())["metadata"]
        config = metadata["train_config"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: expected a checkpoint saved by `vla train` (metadata.train_config), "
                         f"could not read it: {error!r}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path}: metadata.train_config must be an object, got {type(config).__name__}")
    return config, metadata.get("step")


def training_lineage(checkpoint: str | Path) -> list[TrainingStage]:
    """The runs that made `checkpoint`, first run first; refused when a checkpoint on the way is
    not one `vla train` saved, or the names loop."""
    stages: list[TrainingStage] = []
    current: Path | None = Path(checkpoint)
    while current is not None:
        if len(stages) == MAX_STAGES:
            raise ValueError(f"{checkpoint}: more than {MAX_STAGES} training stages; do its checkpoints name "
                             "each other in a loop?")
        config, step = _saved_run(current)
        started_from = "init_from" if config.get("init_from") else "encoders_from" if config.get("encoders_from") \
            else ""
        source = str(config.get(started_from, "")) if started_from else ""
        missing = bool(source) and not (Path(source) / CONFIG_FILE).is_file()
        stages.append(TrainingStage(current, config, step, started_from, source, missing))
        current = Path(source) if source and not missing else None
    return stages[::-1]
