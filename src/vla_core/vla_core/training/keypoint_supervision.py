"""Keypoint supervision of a training run: keypoint 0 of the main view learns the named cube
(and, with `keypoint_tools`, keypoints 1.. learn each arm's tool).

Why: behaviour cloning alone left every policy of this project blind to its main view, the only
view that shows where the named cube is before the arm is near it. An encoder trained to regress
the cube's position from rendered views learns it (about a pixel at 96 px after a few thousand
steps), but only after a long plateau at the mean that the flow loss gives it no reason to cross.
So a run with `keypoint_placements` > 0:

1. renders that many labelled main views per simulated embodiment of its data, and a held-out
   set after them (vla_core.training.keypoint_set);
2. trains the keypoints alone for `keypoint_pretrain_steps` before the policy's first step (a
   fresh run only: a resumed run has them already);
3. adds `keypoint_weight` x the keypoint loss on `keypoint_batch_size` rendered views to every
   micro-batch's loss, so that learning the actions does not unlearn the cube;
4. scores keypoint 0 on the held-out views at every validation (`val_keypoint_rms/<robot>`:
   root-mean-square distance from the named cube, in image half-widths).
Once a run freezes the stems (`freeze_stems_at`), step 3 reads the stem's maps of the views,
computed once, and the views are no longer colour-augmented.

Rendered views get the run's colour augmentation but no shift: their labels are image
positions, and a shifted view would need shifted labels (set `augment_shift: 0` with keypoint
supervision for the same reason: the keypoints are where the cube is in the unshifted camera).
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

import torch

from vla_core.embodiment import EmbodimentSpec
from vla_core.model.policy import VLAPolicy
from vla_core.sim.factory import SIMULATED_EMBODIMENTS
from vla_core.training.augment import augment_views
from vla_core.training.config import TrainConfig, TrainConfigError
from vla_core.training.keypoint_set import KeypointSet, render_keypoint_set
from vla_core.training.mixture import derived_seed

LOGGER = logging.getLogger(__name__)
PRETRAIN_STREAM = 7  # derived_seed stream of the pre-training batches (apart from the training steps')


class KeypointSupervision:
    """The rendered views of a run and the three ways it uses them (see the module docstring)."""

    def __init__(self, config: TrainConfig, policy: VLAPolicy, specs: Mapping[str, EmbodimentSpec]) -> None:
        if policy.config.main_keypoints < 1:
            raise TrainConfigError(f"keypoint_placements {config.keypoint_placements} supervises the policy's "
                                   f"keypoints, but it has none: set policy.main_keypoints (for example 16)")
        simulated = {name: spec for name, spec in specs.items() if spec.name in SIMULATED_EMBODIMENTS}
        if not simulated:
            raise TrainConfigError(f"keypoint supervision renders simulated scenes, and none of the run's embodiments "
                                   f"({sorted(specs)}) has one; simulated: {list(SIMULATED_EMBODIMENTS)}")
        self.config = config
        size, held_out_seed = policy.config.image_size, config.keypoint_seed + config.keypoint_placements
        started = time.perf_counter()
        tools = max(len(spec.arms) for spec in simulated.values()) if config.keypoint_tools else 0
        if 1 + tools > policy.config.main_keypoints:
            raise TrainConfigError(f"keypoint_tools labels the named cube and {tools} tool(s), but the policy has "
                                   f"{policy.config.main_keypoints} keypoint(s): raise policy.main_keypoints")

        def render(spec: EmbodimentSpec, count: int, seed: int) -> KeypointSet:
            return render_keypoint_set(spec, count, seed, size, plan_share=config.keypoint_plan_share,
                                       tools=config.keypoint_tools)

        self.train = KeypointSet.concat([render(spec, config.keypoint_placements, config.keypoint_seed)
                                         for spec in simulated.values()])
        self.held_out = {name: render(spec, config.keypoint_validation, held_out_seed)
                         for name, spec in simulated.items()}
        LOGGER.info("rendered %d keypoint views of %s in %.0f s", len(self.train), sorted(simulated),
                    time.perf_counter() - started)
        self.train_fine: torch.Tensor | None = None  # the frozen stem's maps of `train` (cache_stem_features)

    @classmethod
    def of_views(cls, config: TrainConfig, train: KeypointSet, held_out: Mapping[str, KeypointSet]
                 ) -> KeypointSupervision:
        """Supervision on views made elsewhere (a benchmark's, at the recipe's sizes), not rendered."""
        supervision = cls.__new__(cls)
        supervision.config, supervision.train, supervision.held_out = config, train, dict(held_out)
        supervision.train_fine = None
        return supervision

    def views(self, generator: torch.Generator) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """`keypoint_batch_size` rendered views (colour-augmented, not shifted), texts, targets."""
        images, texts, targets = self.train.sample(generator, self.config.keypoint_batch_size)
        return augment_views(images[:, None], generator, 0.0, self.config.augment_color)[:, 0], texts, targets

    def add_to(self, batch: dict, generator: torch.Generator) -> dict:
        """`batch` with rendered `views`, which `VLAPolicy.forward` turns into `keypoint_loss`;
        once the stem is frozen (`cache_stem_features`), the stem's maps of those views."""
        if self.train_fine is not None:
            rows = self.train.draw_rows(generator, self.config.keypoint_batch_size)
            return {**batch, "keypoint_fine": self.train_fine[rows].float(),
                    "keypoint_texts": [self.train.texts[i] for i in rows.tolist()],
                    "keypoint_targets": self.train.targets[rows]}
        images, texts, targets = self.views(generator)
        return {**batch, "keypoint_images": images, "keypoint_texts": texts, "keypoint_targets": targets}

    @torch.no_grad()
    def cache_stem_features(self, policy: VLAPolicy, batch: int = 128) -> None:
        """The frozen stem's stride-8 maps of every training view (float16, unaugmented), computed
        once: later steps train the keypoint head on them without running the stem."""
        was_training = policy.training
        policy.eval()
        maps = [policy.vision_language.stem_features(self.train.images[first:first + batch].float() / 255.0)[1]
                for first in range(0, len(self.train), batch)]
        policy.train(was_training)
        self.train_fine = torch.cat(maps).half()

    def pretrain(self, policy: VLAPolicy, log: Callable[[dict], None] | None = None) -> None:
        """The keypoints (and the stem they read) trained alone, at the run's learning rate."""
        config = self.config
        parameters = [p for p in policy.vision_language.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
        limit = config.grad_clip_norm or math.inf
        was_training = policy.training
        policy.train()
        for step in range(config.keypoint_pretrain_steps):
            generator = torch.Generator().manual_seed(derived_seed(config.seed, PRETRAIN_STREAM, step))
            optimizer.zero_grad(set_to_none=True)
            loss = policy.keypoint_loss(*self.views(generator))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, limit)
            optimizer.step()
            done = step + 1
            if log is not None and (done % config.log_every == 0 or done == config.keypoint_pretrain_steps):
                log({"step": 0, "keypoint_pretrain_step": done, "keypoint_loss": float(loss.detach())})
        policy.train(was_training)

    @torch.no_grad()
    def score(self, policy: VLAPolicy) -> dict[str, float]:
        """{"val_keypoint_rms/<embodiment>": RMS distance of keypoint 0 from the named cube on the
        held-out views, in image half-widths; with tool labels also "val_tool_rms/<embodiment>":
        that of the tool keypoints from the tools in view}."""
        was_training = policy.training
        policy.eval()
        scores = {}
        for name, views in self.held_out.items():
            errors = policy.keypoint_errors(*views.head(len(views)))
            scores[f"val_keypoint_rms/{name}"] = math.sqrt(float(errors[:, 0].mean()))
            tools = errors[:, 1:][errors[:, 1:].isfinite()]
            if len(tools):
                scores[f"val_tool_rms/{name}"] = math.sqrt(float(tools.mean()))
        policy.train(was_training)
        return scores
