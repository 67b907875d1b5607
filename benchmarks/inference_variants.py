"""Chunk timings of a policy's inference variants, measured interleaved.

On a shared machine the load drifts by more than the differences being measured, so variants are
not timed one block after another: every round runs one chunk of each variant in turn, and the
per-round ratios compare chunks taken seconds apart. A variant is the `optimize_for_inference`
arguments, or None for the reference without the observation K/V cache (the Euler loop calls
`expert.forward`, which projects the observation again at every step: the path before the cache).
"""
from __future__ import annotations

import os
import time

import torch

from vla_core.embodiment import EmbodimentSpec
from vla_core.model.batching import Observation, collate_observations
from vla_core.model.flow_matching import euler_integrate
from vla_core.model.policy import VLAPolicy

Timing = tuple[float, float]  # seconds of one chunk: encoding, Euler steps


def measure_variants(policy: VLAPolicy, spec: EmbodimentSpec, observation: Observation, instruction: str,
                     variants: dict[str, dict | None], rounds: int, warm_up: int,
                     ) -> dict[str, tuple[list[Timing], dict[str, float]]]:
    """Per variant: `rounds` chunk timings, interleaved with the other variants', and notes with
    its first chunk's seconds (where it compiles or captures) and the load average at the end.
    `warm_up` untimed rounds follow the first chunks. The policy is left on its plain path."""

    def chunk(options: dict | None, seed: int) -> Timing:
        policy.optimize_for_inference(**(options or {}))
        if options is None:
            return uncached_chunk(policy, spec, observation, instruction, seed)
        predicted = policy.predict_chunk(observation, instruction, spec.name, seed=seed)
        return predicted.encode_seconds, predicted.denoise_seconds

    first_s = {}
    for name, options in variants.items():
        started = time.perf_counter()
        chunk(options, 0)
        first_s[name] = time.perf_counter() - started
    for seed in range(1, 1 + warm_up):
        for options in variants.values():
            chunk(options, seed)
    timings: dict[str, list[Timing]] = {name: [] for name in variants}
    for seed in range(rounds):
        for name, options in variants.items():
            timings[name].append(chunk(options, seed))
    policy.optimize_for_inference()
    load = round(os.getloadavg()[0], 2)
    return {name: (timings[name], {"first_chunk_s": round(first_s[name], 2), "load_avg_1min": load})
            for name in variants}


def uncached_chunk(policy: VLAPolicy, spec: EmbodimentSpec, observation: Observation, instruction: str,
                   seed: int) -> Timing:
    """One chunk without the K/V cache, timed like `predict_chunks` (same autocast, synchronised)."""
    device = policy.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    with torch.inference_mode(), autocast:
        start = time.perf_counter()
        batch = collate_observations(policy.config, spec, policy.normalizers[spec.name], [observation], [instruction])
        encoded = policy.encode(batch)
        _synchronize(device)
        encoded_at = time.perf_counter()
        noise = torch.randn(1, policy.config.horizon, policy.config.max_action_dim,
                            generator=torch.Generator().manual_seed(seed)).to(device)
        state, lengths = batch["state"].to(device), torch.zeros(1, dtype=torch.long, device=device)
        euler_integrate(lambda x, tau: policy.expert(x, tau, state, lengths, [spec.name], encoded).velocity,
                        noise, policy.config.flow_steps)
        _synchronize(device)
    return encoded_at - start, time.perf_counter() - encoded_at


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def denoise_speedups(measured: dict[str, tuple[list[Timing], dict[str, float]]], reference: str,
                     variant: str) -> list[float]:
    """Per round: the reference's Euler-step time over the variant's (> 1: the variant is faster)."""
    return [ref[1] / var[1] for ref, var in zip(measured[reference][0], measured[variant][0], strict=True)]
