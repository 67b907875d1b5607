"""The Euler loop of a chunk replayed from a CUDA graph.

A chunk's denoising is `flow_steps` x depth small kernels whose launch cost, not arithmetic,
dominates on a GPU at batch 1. A CUDA graph records the whole loop once and replays it with one
launch. Graphs read and write fixed addresses, so each input shape signature (batch size,
observation tokens, dtypes, steps) gets its own capture with static input buffers; a call copies
its tensors into them, replays, and returns copies of the static outputs. Prefix lengths,
embodiment prompts and the noise are tensors among those inputs, so changing them needs no
new capture.

Autocast inside a capture must not use its weight-cast cache (the cached casts would live in
the graph's memory pool and be freed under it), so capture runs with `cache_enabled=False` in
the caller's autocast dtype.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as pytree

WARMUP_CALLS = 2  # eager calls on a side stream before capture (lazy initialisation, cuBLAS workspaces)


class CudaGraphRunner:
    """Calls `function(*args)` (tensors, tuples and NamedTuples of tensors, and plain constants)
    through one CUDA graph per input signature; constants are part of the signature."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self._captured: dict[tuple, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], Any]] = {}

    def __call__(self, *args: Any) -> Any:
        leaves, spec = pytree.tree_flatten(args)
        for leaf in leaves:
            if isinstance(leaf, torch.Tensor) and leaf.device.type != "cuda":
                raise ValueError(f"CUDA graphs replay CUDA tensors only; got a {tuple(leaf.shape)} tensor on "
                                 f"{leaf.device}")
        key = (str(spec), tuple((tuple(x.shape), x.dtype, x.device) if isinstance(x, torch.Tensor) else x
                                for x in leaves))
        if key not in self._captured:
            self._captured[key] = self._capture(leaves, spec)
        graph, static_inputs, static_outputs = self._captured[key]
        for static, leaf in zip(static_inputs, (x for x in leaves if isinstance(x, torch.Tensor))):
            static.copy_(leaf)
        graph.replay()
        return pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, static_outputs)

    def _capture(self, leaves: list[Any], spec: pytree.TreeSpec) -> tuple[torch.cuda.CUDAGraph, list[torch.Tensor], Any]:
        static_leaves = [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves]
        static_args = pytree.tree_unflatten(static_leaves, spec)
        autocast = torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"),
                                  enabled=torch.is_autocast_enabled("cuda"), cache_enabled=False)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), autocast:
            for _ in range(WARMUP_CALLS):
                self.function(*static_args)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the node's other threads (cameras, ROS callbacks) may touch CUDA meanwhile
        with torch.cuda.graph(graph, capture_error_mode="thread_local"), autocast:
            static_outputs = self.function(*static_args)
        return graph, [x for x in static_leaves if isinstance(x, torch.Tensor)], static_outputs
