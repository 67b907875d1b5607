"""Chunk latency of the default policy on this machine: encoding + 10 Euler steps, H = 16, one
224x224 main view and one 224x224 wrist view (the model resizes them), SO-101 profile."""
from __future__ import annotations

import resource

import numpy as np
import torch

from benchmarks.measure import Measurement
from vla_core.embodiment import load_embodiment
from vla_core.model.batching import Observation
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy


def run(quick: bool) -> list[Measurement]:
    torch.manual_seed(0)
    spec = load_embodiment("so101")
    config = PolicyConfig()
    policy = VLAPolicy(config, {spec.name: spec}).eval()
    rng = np.random.default_rng(0)
    observation = Observation(
        main_image=rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        state=np.zeros(spec.state_dim),
        wrist_images={"wrist": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)},
    )
    repeats = 10 if quick else 100
    for _ in range(5):  # warm-up (allocator, kernels, text cache)
        policy.predict_chunk(observation, "pick up the red cube", spec.name, seed=0)
    cached = [policy.predict_chunk(observation, "pick up the red cube", spec.name, seed=i) for i in range(repeats)]
    # a new instruction each time: the text encoder runs too (first chunk of an episode)
    fresh = [policy.predict_chunk(observation, f"pick up the red cube number {i}", spec.name, seed=i)
             for i in range(repeats // 2)]
    total = sum(p.numel() for p in policy.parameters())
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    notes = {"params_total_M": round(total / 1e6, 2), "params_trainable_M": round(trainable / 1e6, 2),
             "peak_rss_MiB": round(peak_rss_mib), "memory": "peak resident set of the process (getrusage)",
             "torch_threads": torch.get_num_threads(),
             "flow_steps": config.flow_steps, "horizon": config.horizon}
    ms = 1e3
    return [
        Measurement.from_samples("chunk latency (instruction cached)", "ms",
                                 [c.latency_seconds * ms for c in cached], target="<= 50 ms", **notes),
        Measurement.from_samples("  of which encoding", "ms", [c.encode_seconds * ms for c in cached]),
        Measurement.from_samples("  of which 10 Euler steps", "ms", [c.denoise_seconds * ms for c in cached]),
        Measurement.from_samples("chunk latency (new instruction)", "ms", [c.latency_seconds * ms for c in fresh],
                                 target="<= 50 ms"),
        Measurement.from_samples("  of which encoding, text encoder included", "ms",
                                 [c.encode_seconds * ms for c in fresh]),
    ]
