"""Evaluation results as people read them: a Markdown table, JSON, and PNG pictures.

Pictures are drawn with matplotlib's Agg backend (no display needed): success rates with their
Wilson intervals as a bar chart, an image strip of an episode's main camera, and joint targets
against measured joints over time (used by `make demo` too).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vla_core.evaluation.summary import CellSummary


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.0f}"


def markdown_table(summaries: Sequence[CellSummary]) -> str:
    lines = ["| embodiment | task | wording | mode | success | 95 % interval (Wilson) | mean time to success (s) "
             "| chunk latency median / p90 (ms) | starved ticks | targets refused | wall s / episode "
             "| failures: closest approach, median (cm) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summaries:
        k = s.key
        time_to_success = "-" if s.mean_time_to_success is None else f"{s.mean_time_to_success:.2f}"
        refused = "-" if s.refused_fraction is None else f"{s.refused_fraction:.0%}"
        closest = "-" if s.failed_closest_approach is None else f"{s.failed_closest_approach * 100:.1f}"
        lines.append(f"| {k.embodiment} | {k.task} | {k.wording} | {k.mode} | {s.successes}/{s.episodes} "
                     f"({s.success_rate:.0%}) | {s.wilson_low:.0%} - {s.wilson_high:.0%} | {time_to_success} "
                     f"| {_ms(s.latency_median)} / {_ms(s.latency_p90)} | {s.starved_ticks} | {refused} | "
                     f"{s.mean_wall_seconds:.1f} | {closest} |")
    return "\n".join(lines) + "\n"


def write_json(path: Path, summaries: Sequence[CellSummary], settings: dict, episodes: dict[str, list[dict]]) -> Path:
    """Settings of the run, one summary per cell and every episode's outcome."""
    payload = {"settings": settings, "cells": [s.to_json() for s in summaries], "episodes": episodes}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def plot_success_rates(summaries: Sequence[CellSummary], path: Path, title: str) -> Path:
    plt = _pyplot()
    labels = [s.key.label.replace("/", "\n", 2) for s in summaries]
    rates = np.array([s.success_rate for s in summaries])
    errors = np.array([[s.success_rate - s.wilson_low for s in summaries],
                       [s.wilson_high - s.success_rate for s in summaries]])
    figure, axis = plt.subplots(figsize=(max(4.0, 1.6 * len(summaries)), 4.0), dpi=100)
    axis.bar(range(len(summaries)), rates * 100, yerr=errors * 100, capsize=6,
             color=["#4c72b0" if s.key.mode == "async" else "#dd8452" for s in summaries])
    for index, s in enumerate(summaries):
        axis.text(index, 2, f"{s.successes}/{s.episodes}", ha="center", va="bottom", fontsize=9)
    axis.set_xticks(range(len(summaries)), labels, fontsize=8)
    axis.set_ylim(0, 105)
    axis.set_ylabel("success rate (%), 95 % Wilson interval")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_image_strip(frames: Sequence[tuple[float, np.ndarray]], path: Path, count: int = 6) -> Path:
    """`count` frames, evenly spread over the episode, side by side with their times."""
    if not frames:
        raise ValueError("an image strip needs at least one frame")
    plt = _pyplot()
    chosen = [frames[int(i)] for i in np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round())]
    figure, axes = plt.subplots(1, len(chosen), figsize=(2.2 * len(chosen), 2.5), dpi=100, squeeze=False)
    for axis, (stamp, image) in zip(axes[0], chosen):
        axis.imshow(image)
        axis.set_title(f"t = {stamp:.1f} s", fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_joint_tracking(times: np.ndarray, targets: np.ndarray, measured: np.ndarray, joint_names: Sequence[str],
                        path: Path, title: str) -> Path:
    """One panel per joint: commanded targets (NaN = nothing commanded) and measured positions."""
    plt = _pyplot()
    times, targets, measured = np.asarray(times), np.asarray(targets), np.asarray(measured)
    columns = 3
    rows = int(np.ceil(len(joint_names) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.0 * columns, 2.4 * rows), dpi=100, squeeze=False,
                                sharex=True)
    for index, name in enumerate(joint_names):
        axis = axes[index // columns][index % columns]
        axis.plot(times, measured[:, index], color="#4c72b0", label="measured")
        axis.plot(times, targets[:, index], color="#dd8452", linestyle="--", label="target")
        axis.set_title(name, fontsize=9)
        axis.set_ylabel("rad", fontsize=8)
    for index in range(len(joint_names), rows * columns):
        axes[index // columns][index % columns].axis("off")
    for axis in axes[-1]:
        axis.set_xlabel("simulated time (s)", fontsize=8)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
