"""Chunk latency of the X-VLA-0.9B-sized preset (`vla_core.model.presets`, random weights):
observation encoding once, then Euler steps of the 24-block expert, H = 30, one 224x224 main
and one 224x224 wrist view, on CUDA when there is one (bf16 autocast, as the policy node runs).

On CUDA every inference variant is measured in one run, interleaved chunk by chunk
(benchmarks/inference_variants.py): the expert re-projecting the observation at every step (the
path before the observation K/V cache), the policy's default path (K/V cached once per chunk),
and that path with torch.compile, with CUDA graphs, and with both.

On a CPU the preset runs only the default path and the reference without the cache, at
CPU_STEPS Euler steps instead of 10, and only when one warm-up chunk fits CPU_BUDGET_S; the rows
say which steps and device they were measured with. A 10-step figure is never extrapolated:
without CUDA that number is not measured here.
"""
from __future__ import annotations

import dataclasses
import resource
import time

import numpy as np
import torch

from benchmarks.inference_variants import denoise_speedups, measure_variants
from benchmarks.measure import Measurement
from vla_core.embodiment import load_embodiment
from vla_core.model.batching import Observation
from vla_core.model.policy import VLAPolicy
from vla_core.model.presets import preset_config

PRESET = "xvla-0.9b"
CUDA_STEPS = 10
CPU_STEPS = 2
CPU_BUDGET_S = 30.0  # one warm-up chunk on the CPU; above it the CPU run is left out
INSTRUCTION = "pick up the red cube"
CUDA_VARIANTS = {  # name: optimize_for_inference arguments; None = the uncached reference loop
    "no K/V cache": None,
    "K/V cache": {},
    "K/V cache + torch.compile": {"compile": True},
    "K/V cache + CUDA graphs": {"cuda_graphs": True},
    "K/V cache + torch.compile + CUDA graphs": {"compile": True, "cuda_graphs": True},
}


def run(quick: bool) -> list[Measurement]:
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    steps = CUDA_STEPS if cuda else CPU_STEPS
    torch.manual_seed(0)
    config = preset_config(PRESET, flow_steps=steps)
    spec = dataclasses.replace(load_embodiment("so101"), chunk_size=config.horizon)
    policy = VLAPolicy(config, {spec.name: spec}).eval().to(device)
    rng = np.random.default_rng(0)
    observation = Observation(
        main_image=rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        state=np.zeros(spec.state_dim),
        wrist_images={"wrist": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)},
    )

    started = time.perf_counter()
    policy.predict_chunk(observation, INSTRUCTION, spec.name, seed=0)  # warm-up: allocator, kernels, text cache
    warmup_s = time.perf_counter() - started
    if not cuda and warmup_s > CPU_BUDGET_S:
        print(f"  {PRESET} needs CUDA: one {steps}-step chunk took {warmup_s:.0f} s on this CPU "
              f"(budget {CPU_BUDGET_S:.0f} s); nothing measured")
        return []
    repeats = (20 if quick else 100) if cuda else (2 if quick else 5)
    notes = {
        "device": torch.cuda.get_device_name() if cuda else "cpu", "preset": PRESET, "flow_steps": steps,
        "horizon": config.horizon, "params_M": round(sum(p.numel() for p in policy.parameters()) / 1e6, 1),
        "dtype": "bf16 autocast" if cuda else "fp32", "torch_threads": torch.get_num_threads(),
    }
    variants = CUDA_VARIANTS if cuda else {"K/V cache": {}, "no K/V cache": None}
    measured = measure_variants(policy, spec, observation, INSTRUCTION, variants, repeats, warm_up=2 if cuda else 0)
    if cuda:
        notes["peak_cuda_MiB"] = round(torch.cuda.max_memory_allocated() / 2**20)
    else:
        notes["peak_rss_MiB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    rows = []
    for i, (name, (timings, variant_notes)) in enumerate(measured.items()):
        ms = [(encode * 1e3, denoise * 1e3) for encode, denoise in timings]
        rows += [
            Measurement.from_samples(f"{PRESET} chunk latency, {name} ({steps} Euler steps, {device})", "ms",
                                     [e + d for e, d in ms], **(notes if i == 0 else {}), **variant_notes),
            Measurement.from_samples("  of which encoding (once per chunk)", "ms", [e for e, _ in ms]),
            Measurement.from_samples(f"  of which {steps} Euler steps", "ms", [d for _, d in ms]),
        ]
        if name == "no K/V cache":
            rows.append(Measurement.from_samples("  K/V cache speed-up of the Euler steps", "x",
                                                 denoise_speedups(measured, name, "K/V cache"),
                                                 note="per interleaved round"))
        elif name != "K/V cache":
            rows.append(Measurement.from_samples("  speed-up of the Euler steps over the K/V cache path", "x",
                                                 denoise_speedups(measured, "K/V cache", name),
                                                 note="per interleaved round"))
    return rows
