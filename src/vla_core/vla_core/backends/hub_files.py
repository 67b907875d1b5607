"""What a LeRobot policy fetches from the Hugging Face Hub by name when it is built, found offline.

SmolVLA, pi0 and X-VLA name other models in their saved files: a tokenizer in the pre-processor
(`tokenizer_name`: SmolVLM2's for SmolVLA, PaliGemma's for pi0, BART's for X-VLA) and, for
SmolVLA, the VLM whose config (and, with `load_vlm_weights`, weights) builds its backbone
(`vlm_model_name` in config.json). LeRobot loads them with transformers' `from_pretrained`
while the policy is constructed; the node runs the child offline (HF_HUB_OFFLINE=1), so each
must already be on disk: a local directory when the name is a path, else a snapshot in the
Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
This module finds them before the child starts, so a missing file is refused by name and place
instead of surfacing as a transformers stack trace from inside the child.

Only the standard library: the cache layout (`models--org--name/refs/main` naming a folder under
`snapshots/`) is Hugging Face's documented one.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# each need is a list of alternatives, each alternative the files that together satisfy it
TOKENIZER_NEEDS: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("tokenizer_config.json",), ("config.json",)),  # what AutoTokenizer reads first to pick the class
    (("tokenizer.json",), ("tokenizer.model",), ("vocab.json", "merges.txt"), ("vocab.txt",)),
)
VLM_CONFIG_NEEDS: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("config.json",),),
    (("preprocessor_config.json",), ("processor_config.json",)),  # AutoProcessor's image side
    *TOKENIZER_NEEDS,
)
WEIGHT_NEEDS: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("model.safetensors",), ("model.safetensors.index.json",)),
)


@dataclass(frozen=True)
class HubNeed:
    """One model the policy loads by name, why, and which files it must find there."""

    name: str  # a Hub repository id ("facebook/bart-large") or a local directory
    reason: str  # where the policy names it, for the message
    needs: tuple[tuple[tuple[str, ...], ...], ...]


def hub_cache() -> Path:
    """The Hugging Face cache transformers reads offline, as huggingface_hub resolves it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _processor_steps(directory: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(processor file, step name, step config) for each step of the saved processors."""
    steps = []
    for path in sorted(directory.glob("policy_*processor*.json")):
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            continue  # read_policy_directory refuses a malformed processor file by name
        for step in saved.get("steps", []) if isinstance(saved, dict) else []:
            if isinstance(step, dict) and isinstance(step.get("config"), dict):
                steps.append((path.name, str(step.get("registry_name") or step.get("class") or "?"), step["config"]))
    return steps


def hub_needs(config: dict[str, Any], directory: str | Path) -> list[HubNeed]:
    """The models `config` (the policy's config.json) and its saved processors load by name."""
    directory = Path(directory)
    needs: list[HubNeed] = []
    for file, step, step_config in _processor_steps(directory):
        for key, value in step_config.items():
            if key.endswith("tokenizer_name") and isinstance(value, str) and value:
                needs.append(HubNeed(value, f"{key} of the {step} step in {file}", TOKENIZER_NEEDS))
    vlm = config.get("vlm_model_name")
    if isinstance(vlm, str) and vlm:
        weights = WEIGHT_NEEDS if config.get("load_vlm_weights") else ()
        needs.append(HubNeed(vlm, "vlm_model_name in config.json" + (" (load_vlm_weights: its weights too)"
                                                                     if weights else ""), VLM_CONFIG_NEEDS + weights))
    return needs


def locate(name: str) -> tuple[Path | None, str]:
    """The directory holding `name`'s files (a local path, or its cache snapshot) and where it
    looked, in words; None when there is no such directory."""
    local = Path(name).expanduser()
    if local.is_dir():
        return local, str(local)
    if name.startswith(("/", ".", "~")) or name.count("/") != 1:
        return None, f"{local} (not a directory; not a Hub repository id either)"
    repo = hub_cache() / ("models--" + name.replace("/", "--"))
    snapshots = repo / "snapshots"
    ref = repo / "refs" / "main"
    if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
        return snapshots / ref.read_text().strip(), str(snapshots / ref.read_text().strip())
    candidates = sorted((p for p in snapshots.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if candidates:
        return candidates[-1], str(candidates[-1])
    return None, f"{snapshots} (no snapshot in the Hugging Face cache)"


def missing_files(need: HubNeed) -> tuple[list[str], str]:
    """The files `need` lacks (each unmet need as its alternatives) and where they were looked for."""
    found, where = locate(need.name)
    unmet = []
    for alternatives in need.needs:
        if found is None or not any(all((found / f).is_file() for f in files) for files in alternatives):
            unmet.append(" or ".join("+".join(files) for files in alternatives))
    return unmet, where


def offline_problems(config: dict[str, Any], directory: str | Path) -> list[str]:
    """One line per model the policy cannot load offline: its name, why the policy loads it, the
    missing files and where they were looked for. Empty when every file is on disk."""
    problems = []
    for need in hub_needs(config, directory):
        unmet, where = missing_files(need)
        if unmet:
            problems.append(f"{need.name} ({need.reason}): missing {'; '.join(unmet)}; looked in {where}")
    return problems
