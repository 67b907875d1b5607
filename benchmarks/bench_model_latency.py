"""Chunk latency of the default policy on this machine: encoding + 10 Euler steps, H = 16, one
224x224 main view and one 224x224 wrist view (the model resizes them), SO-101 profile.

Three variants run interleaved chunk by chunk (benchmarks/inference_variants.py): the default
path (observation K/V cached once per chunk), the reference without that cache, and the default
path with the Euler step compiled by torch.compile (`VLAPolicy.optimize_for_inference`); the
speed-up rows are per-round ratios, robust to a shared machine's drifting load, which the
notes record."""
from __future__ import annotations

import os
import resource

import numpy as np
import torch

from benchmarks.inference_variants import denoise_speedups, measure_variants
from benchmarks.measure import Measurement
from vla_core.embodiment import load_embodiment
from vla_core.model.batching import Observation
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy

INSTRUCTION = "pick up the red cube"
VARIANTS = {"K/V cache": {}, "no K/V cache": None, "K/V cache + torch.compile": {"compile": True}}


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
        policy.predict_chunk(observation, INSTRUCTION, spec.name, seed=0)
    measured = measure_variants(policy, spec, observation, INSTRUCTION, VARIANTS, repeats, warm_up=5)
    load = os.getloadavg()[0]
    # a new instruction each time: the text encoder runs too (first chunk of an episode)
    fresh = [policy.predict_chunk(observation, f"{INSTRUCTION} number {i}", spec.name, seed=i)
             for i in range(repeats // 2)]
    total = sum(p.numel() for p in policy.parameters())
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    notes = {"params_total_M": round(total / 1e6, 2), "params_trainable_M": round(trainable / 1e6, 2),
             "peak_rss_MiB": round(peak_rss_mib), "memory": "peak resident set of the process (getrusage)",
             "torch_threads": torch.get_num_threads(), "flow_steps": config.flow_steps, "horizon": config.horizon,
             "load_avg_1min": round(load, 2)}
    ms = 1e3
    default, _ = measured["K/V cache"]
    compiled, compiled_notes = measured["K/V cache + torch.compile"]
    return [
        Measurement.from_samples("chunk latency (instruction cached)", "ms", [(e + d) * ms for e, d in default],
                                 target="<= 50 ms", **notes),
        Measurement.from_samples("  of which encoding", "ms", [e * ms for e, _ in default]),
        Measurement.from_samples("  of which 10 Euler steps", "ms", [d * ms for _, d in default]),
        Measurement.from_samples("chunk latency (new instruction)", "ms", [c.latency_seconds * ms for c in fresh],
                                 target="<= 50 ms", load_avg_1min=round(os.getloadavg()[0], 2)),
        Measurement.from_samples("  of which encoding, text encoder included", "ms",
                                 [c.encode_seconds * ms for c in fresh]),
        Measurement.from_samples("10 Euler steps without the K/V cache (interleaved reference)", "ms",
                                 [d * ms for _, d in measured["no K/V cache"][0]]),
        Measurement.from_samples("  K/V cache speed-up of the Euler steps", "x",
                                 denoise_speedups(measured, "no K/V cache", "K/V cache"), note="per interleaved round"),
        Measurement.from_samples("chunk latency, torch.compile'd Euler step (instruction cached)", "ms",
                                 [(e + d) * ms for e, d in compiled], target="<= 50 ms", **compiled_notes),
        Measurement.from_samples("  of which 10 compiled Euler steps", "ms", [d * ms for _, d in compiled]),
        Measurement.from_samples("  torch.compile speed-up of the Euler steps", "x",
                                 denoise_speedups(measured, "K/V cache", "K/V cache + torch.compile"),
                                 note="per interleaved round"),
    ]
