"""The LeRobot backend's child process: one LeRobot policy served over a local socket.

Run by `vla_core.backends.lerobot.LeRobotBackend` with the Python of the LeRobot environment
(LeRobot pins torch and Python versions the node's environment may not have):

    python lerobot_child.py --connect SOCKET --policy DIR [--device cpu] [--domain-id N]

It imports only the standard library, numpy, torch, LeRobot and its sibling `wire.py` (vla_core
is not installed there). The policy is loaded with LeRobot's own classes from the local
directory (nothing is fetched), its pre- and post-processors applied (normalisation statistics
come from their files), and each request answered with `predict_action_chunk`'s chunk in the
dataset's units. Messages: "ready" (or "error") once loaded; then "predict" -> "chunk" (or
"error"), "close" -> exit.
"""
from __future__ import annotations

import argparse
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# run as a script, this file's folder is sys.path[0], so its sibling wire.py imports as `wire`; no
# module in that folder may be named like a LeRobot package (the parent's is lerobot_backend.py)
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from wire import receive_message, send_message  # noqa: E402 - the sibling file, found through the path above


class Predictor(Protocol):
    def describe(self) -> dict[str, Any]: ...

    def predict(self, arrays: dict[str, np.ndarray], task: str, seed: int | None) -> np.ndarray: ...


class LeRobotPredictor:
    """A LeRobot policy and its processors, loaded offline from `directory`."""

    def __init__(self, directory: str, device: str, domain_id: int | None = None) -> None:
        import torch
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors

        self.torch = torch
        config = PreTrainedConfig.from_pretrained(directory)
        if getattr(config, "pretrained_backbone_weights", None) is not None:
            config.pretrained_backbone_weights = None  # the trained weights replace them; never download ImageNet's
        config.device = device
        self.policy = get_policy_class(config.type).from_pretrained(directory, config=config).to(device).eval()
        overrides: dict[str, dict[str, Any]] = {"device_processor": {"device": device}}
        if domain_id is not None:  # X-VLA's soft prompt: the robot's profile picks it, not the saved default
            overrides["xvla_add_domain_id"] = {"domain_id": domain_id}
        self.preprocessor, self.postprocessor = make_pre_post_processors(
            config, pretrained_path=directory, preprocessor_overrides=overrides,
            postprocessor_overrides={"device_processor": {"device": "cpu"}})
        self.config = config

    def describe(self) -> dict[str, Any]:
        return {"type": self.config.type, "chunk_size": int(getattr(self.config, "chunk_size", 0) or 0)}

    def predict(self, arrays: dict[str, np.ndarray], task: str, seed: int | None) -> np.ndarray:
        torch = self.torch
        if seed is not None:
            torch.manual_seed(seed)
        batch: dict[str, Any] = {"task": [task]}
        for name, array in arrays.items():
            tensor = torch.from_numpy(np.array(array))
            if name.startswith("observation.images."):  # (H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]
                tensor = tensor.permute(2, 0, 1).float() / 255.0
            batch[name] = tensor.float().unsqueeze(0)
        batch = self.preprocessor(batch)
        self.policy.reset()  # one chunk per request: no action queue or temporal state kept in the child
        with torch.inference_mode():
            chunk = self.policy.predict_action_chunk(batch)  # (1, T, D), normalised
        rows = self.postprocessor(chunk[0])  # the T rows as a batch: de-normalised, on the CPU
        return rows.detach().cpu().numpy().astype(np.float64)


def serve(sock: socket.socket, load: Any) -> None:
    """Load (a callable giving a Predictor), say "ready", then answer requests until "close" or EOF.
    A failed request is an "error" answer, never an exit: only a crash ends the process."""
    try:
        predictor: Predictor = load()
    except OSError as error:  # transformers' and huggingface_hub's "not on disk, and offline": no stack trace
        send_message(sock, {"kind": "error", "cause": "missing_files",
                            "message": f"a file the policy loads is not on disk (nothing is downloaded at run "
                                       f"time): {type(error).__name__}: {' '.join(str(error).split())[:600]}"})
        return
    except Exception as error:  # noqa: BLE001 - reported to the parent by name, then exit
        send_message(sock, {"kind": "error", "cause": "load_failed",
                            "message": f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"})
        return
    send_message(sock, {"kind": "ready", **predictor.describe()})
    while True:
        header, arrays = receive_message(sock)
        if header.get("kind") == "close":
            return
        if header.get("kind") != "predict":
            send_message(sock, {"kind": "error", "cause": "bad_request", "message": f"unknown kind {header.get('kind')!r}"})
            continue
        try:
            actions = predictor.predict(arrays, str(header.get("task", "")), header.get("seed"))
        except Exception as error:  # noqa: BLE001 - one request failed; the policy keeps serving
            send_message(sock, {"kind": "error", "cause": "predict_failed", "message": f"{type(error).__name__}: {error}"})
            continue
        send_message(sock, {"kind": "chunk"}, {"action": np.asarray(actions, dtype=np.float64)})


def main(argv: list[str] | None = None, load: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", required=True, help="the parent's Unix socket")
    parser.add_argument("--policy", required=True, help="the LeRobot policy directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--domain-id", type=int, default=None, help="X-VLA's soft-prompt domain (the profile's)")
    args = parser.parse_args(argv)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(args.connect)
        serve(sock, load or (lambda: LeRobotPredictor(args.policy, args.device, args.domain_id)))


if __name__ == "__main__":
    main()
