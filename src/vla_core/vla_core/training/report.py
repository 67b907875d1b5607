"""What a run leaves for people to read: metrics as JSON lines and the loss curve as a PNG."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS_FILE, CURVE_FILE = "metrics.jsonl", "loss_curve.png"


class MetricsLog:
    """Appends one JSON object per logged step to <output>/metrics.jsonl (rank 0 only)."""

    def __init__(self, output_dir: Path, resume_step: int = 0) -> None:
        self.path = output_dir / METRICS_FILE
        output_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # a resumed run drops what the interrupted run logged after its checkpoint
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def plot_loss_curve(records: list[dict[str, Any]], path: Path) -> Path:
    """Training loss (and validation L1 on a second axis) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    train = [r for r in records if "loss" in r]
    axis.plot([r["step"] for r in train], [r["loss"] for r in train], label="training loss", color="tab:blue")
    axis.set_xlabel("step")
    axis.set_ylabel("flow-matching loss")
    axis.set_yscale("log")
    validation = [r for r in records if "val_l1" in r]
    if validation:
        second = axis.twinx()
        second.plot([r["step"] for r in validation], [r["val_l1"] for r in validation], "o-", color="tab:orange",
                    label="validation L1 (normalised)")
        second.set_ylabel("validation L1")
        second.legend(loc="upper right")
    axis.legend(loc="upper left")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
