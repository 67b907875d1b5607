"""Instructed keypoints: the camera projection their labels come from, the rendered views, the head
learning to point where the instruction says, the expert reading them, and a run supervising them."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from vla_core.embodiment import load_embodiment
from vla_core.model.configuration import PolicyConfig
from vla_core.model.interfaces import EncodedTokens
from vla_core.model.policy import VLAPolicy
from vla_core.sim.factory import make_scene
from vla_core.sim.scene import CUBE_COLOURS
from vla_core.training.config import TrainConfigError
from vla_core.training.keypoint_set import KeypointSet, _tool_labels, render_keypoint_set
from vla_core.training.loop import Trainer

from .test_training_loop import config_for
from .toy_policies import toy_embodiment, toy_policy
from .training_episodes import synthetic_episode, tiny_policy_settings

COLOURS = {name: np.array(rgba[:3]) for name, rgba in CUBE_COLOURS.items()}


def nearest_colour(pixel: np.ndarray) -> str:
    """The cube colour whose direction in RGB is nearest the pixel's (shading changes brightness)."""
    direction = pixel / (np.linalg.norm(pixel) + 1e-9)
    return max(COLOURS, key=lambda name: direction @ (COLOURS[name] / np.linalg.norm(COLOURS[name])))


def pixel_at(image: np.ndarray, position: np.ndarray) -> np.ndarray:
    """The (H, W, 3) image's pixel at an image position in [-1, 1]."""
    size = image.shape[0]
    column, row = np.clip(((position + 1) / 2 * size).astype(int), 0, size - 1)
    return image[row, column].astype(float)


@pytest.mark.parametrize("embodiment", ["so101", "aloha"])
def test_image_position_lands_on_each_cube(embodiment: str) -> None:
    scene = make_scene(embodiment, "pick_cube")
    camera = load_embodiment(embodiment).main_camera.name
    try:
        for seed in (0, 1, 2):
            scene.reset(seed)
            image = scene.render(camera)
            for colour in scene.colours:
                position = scene.image_position(camera, scene.cube(colour).position)
                assert np.all(np.abs(position) < 1), (seed, colour, position)
                assert nearest_colour(pixel_at(image, position)) == colour, (seed, colour, position)
    finally:
        scene.close()


def test_rendered_views_are_labelled_with_the_named_cube_and_reproducible() -> None:
    spec = load_embodiment("so101")
    views = render_keypoint_set(spec, 8, 30000, 96)
    assert views.images.shape == (8, 3, 96, 96) and views.images.dtype == torch.uint8
    assert views.targets.shape == (8, 1, 2) and float(views.targets.abs().max()) < 1
    for image, text, target in zip(views.images, views.texts, views.targets[:, 0]):
        assert text.startswith(spec.text_prompt(""))  # the embodiment's prompt, as the policy is run with
        named = text.split("task: ")[-1].split(" the ")[1].split()[0]
        assert named in COLOURS, text
        assert nearest_colour(pixel_at(image.permute(1, 2, 0).numpy(), target.numpy())) == named, text
    assert {"pick up", "put the"} <= {text.split(": ")[-1][:7] for text in views.texts}  # both tasks' words
    again = render_keypoint_set(spec, 3, 30000, 96)
    assert torch.equal(again.images, views.images[:3]) and torch.equal(again.targets, views.targets[:3])
    assert not torch.equal(render_keypoint_set(spec, 3, 30100, 96).targets, views.targets[:3])


@pytest.mark.parametrize("embodiment", ["so101", "aloha"])
def test_reaching_views_put_a_tool_at_the_named_cube_and_label_every_tool(embodiment: str) -> None:
    spec = load_embodiment(embodiment)
    reaching = render_keypoint_set(spec, 12, 30000, 96, plan_share=1.0, tools=True)
    around_home = render_keypoint_set(spec, 12, 30000, 96, plan_share=0.0, tools=True)
    assert reaching.targets.shape == (12, 1 + len(spec.arms), 2)
    for views in (reaching, around_home):  # the cube always in view; tools mostly (the ALOHA's can leave it)
        assert views.targets[:, 0].isfinite().all()
        labelled = views.targets[views.targets.isfinite()]
        assert len(labelled) >= 0.6 * views.targets.numel() and float(labelled.abs().max()) <= 1

    def nearest_tool(views) -> torch.Tensor:  # per view: the labelled tool nearest the named cube
        distance = (views.targets[:, 1:] - views.targets[:, :1]).norm(dim=-1)
        return distance.nan_to_num(float("inf")).min(dim=1).values

    # reaching views run from home to the straddle, so the acting tool is mostly near the cube (a few
    # centimetres); in random poses around home it is not
    assert float(nearest_tool(reaching).median()) < 0.5 * float(nearest_tool(around_home).median())
    both = KeypointSet.concat([render_keypoint_set(load_embodiment("so101"), 2, 30000, 96, tools=True), reaching])
    assert both.targets.shape == (14, 1 + len(spec.arms), 2)
    assert both.targets[:2, 2:].isnan().all()  # the SO-101 has no second tool
    with pytest.raises(ValueError, match="plan_share"):
        render_keypoint_set(spec, 1, 30000, 96, plan_share=1.5)


def test_a_tool_beside_or_behind_the_camera_has_no_label() -> None:
    spec = load_embodiment("aloha")
    scene = make_scene("aloha", "pick_cube")
    camera = spec.main_camera.name
    above_camera = scene.data.cam_xpos[scene.model.camera(camera).id] + [0.0, 0.0, 0.2]

    class Teleop:  # arm 0's tool above the top camera, arm 1's at a cube, in view
        def tool_position(self, arm: int, joints: np.ndarray) -> np.ndarray:
            return above_camera if arm == 0 else scene.cube(scene.colours[0]).position

    try:
        scene.reset(0)
        labels = _tool_labels(scene, Teleop(), spec, scene.joint_positions(), camera)
    finally:
        scene.close()
    assert np.isnan(labels[0]).all() and np.all(np.abs(labels[1]) <= 1)


def test_the_keypoint_loss_counts_labelled_points_only() -> None:
    torch.manual_seed(0)
    policy = toy_policy([toy_embodiment("toy")], image_size=32, main_keypoints=3, vision_width=16).eval()
    images = torch.rand(2, 3, 32, 32)
    texts = ["pick up the red cube"] * 2
    with torch.no_grad():
        points = policy.vision_language.keypoints(images, texts)
        exact = torch.cat([points[:, :2], torch.full((2, 1, 2), math.nan)], dim=1)  # point 2 unlabelled
        assert float(policy.keypoint_loss(images, texts, exact)) == pytest.approx(0.0, abs=1e-10)
        moved = exact.clone()
        moved[0, 1] += torch.tensor([0.3, 0.4])  # 0.5 away: 0.25 squared, averaged over 2 views
        assert float(policy.keypoint_loss(images, texts, moved)) == pytest.approx(0.125, rel=1e-4)
        errors = policy.keypoint_errors(images, texts, moved)
        assert errors.shape == (2, 3) and errors[:, 2].isnan().all()
    policy.keypoint_loss(images, texts, moved).backward()  # an unlabelled point leaves every gradient finite
    gradients = [p.grad for p in policy.vision_language.parameters() if p.grad is not None]
    assert gradients and all(g.isfinite().all() for g in gradients)
    with pytest.raises(ValueError, match="main_keypoints"):
        policy.keypoint_loss(images, texts, torch.zeros(2, 4, 2))


def squares(generator: torch.Generator, count: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """32 px views with a red and a blue 6 px square at random places; the instruction names one."""
    images = torch.full((count, 3, 32, 32), 0.3)
    texts, targets = [], []
    for n in range(count):
        corners = torch.randint(0, 26, (2, 2), generator=generator)
        for (row, column), rgb in zip(corners.tolist(), ([0.9, 0.1, 0.1], [0.1, 0.2, 0.9])):
            images[n, :, row:row + 6, column:column + 6] = torch.tensor(rgb)[:, None, None]
        named = int(torch.randint(0, 2, (1,), generator=generator))
        texts.append(f"pick up the {('red', 'blue')[named]} cube")
        row, column = corners[named].tolist()
        targets.append([[(column + 3) / 16 - 1, (row + 3) / 16 - 1]])
    return images, texts, torch.tensor(targets)


def test_keypoint_zero_learns_to_point_at_the_named_square() -> None:
    torch.manual_seed(0)
    policy = toy_policy([toy_embodiment("toy")], image_size=32, main_keypoints=4, vision_width=16)
    parameters = [p for p in policy.vision_language.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    test_images, test_texts, test_targets = squares(torch.Generator().manual_seed(99), 64)
    spread = float((test_targets - test_targets.mean(0)).pow(2).sum(-1).mean().sqrt())

    def error() -> float:
        with torch.no_grad():
            return float(policy.keypoint_loss(test_images, test_texts, test_targets).sqrt())

    before = error()
    for _ in range(300):
        loss = policy.keypoint_loss(*squares(generator, 32))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = error()
    assert after < 0.3 * spread < before, (before, after, spread)  # the named square, not the other or the middle


def test_the_expert_reads_the_keypoints_beside_the_state() -> None:
    policy = toy_policy([toy_embodiment("toy")], main_keypoints=3).eval()
    tokens = EncodedTokens(torch.randn(1, 5, 32), torch.ones(1, 5, dtype=torch.bool))
    prefix = torch.zeros(1, dtype=torch.long)
    actions, tau, state = torch.randn(1, 8, 4), torch.full((1,), 0.5), torch.zeros(1, 3)

    def velocity(keypoints: torch.Tensor) -> torch.Tensor:
        observed = EncodedTokens(tokens.tokens, tokens.valid, keypoints)
        context = policy.expert.prepare_context(observed, prefix, ["toy"])
        return policy.expert.velocity(actions, tau, state, context).velocity

    with torch.no_grad():
        assert not torch.allclose(velocity(torch.zeros(1, 3, 2)), velocity(torch.full((1, 3, 2), 0.5)))
        with pytest.raises(ValueError, match="keypoint"):
            velocity(torch.zeros(1, 2, 2))  # fewer keypoints than the expert was built for
    with pytest.raises(ValueError, match="main_keypoints"):
        PolicyConfig(main_keypoints=4, backbone="some/hf-model")
    with pytest.raises(ValueError, match="no keypoint head"):
        toy_policy([toy_embodiment("toy")]).keypoint_loss(torch.zeros(1, 3, 16, 16), ["x"], torch.zeros(1, 1, 2))


@pytest.mark.slow
def test_a_run_pretrains_cotrains_and_scores_the_keypoints(tmp_path) -> None:
    episodes = [synthetic_episode("so101", 24, seed) for seed in range(3)]
    settings = {"policy": tiny_policy_settings(main_keypoints=2), "keypoint_placements": 6, "keypoint_validation": 3,
                "keypoint_batch_size": 3, "keypoint_pretrain_steps": 3, "augment_shift": 0.0,
                "keypoint_plan_share": 0.5, "keypoint_tools": True}
    trainer = Trainer(config_for(tmp_path / "run", **settings), [episodes])
    assert len(trainer.keypoints.train) == 6 and len(trainer.keypoints.held_out["so101"]) == 3
    expert_before = trainer.policy.expert.head.weight.detach().clone()
    stem_before = trainer.policy.vision_language.vision.stem[0].weight.detach().clone()
    checkpoint = trainer.run()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["keypoint_pretrain_step"] for r in records if "keypoint_pretrain_step" in r] == [1, 2, 3]
    assert all("keypoint_loss" in r for r in records if "loss" in r)
    scored = [r for r in records if "val_keypoint_rms/so101" in r]
    assert [r["step"] for r in scored] == [0, 2, 4] and all(0 < r["val_keypoint_rms/so101"] < 3 for r in scored)
    assert all(0 < r["val_tool_rms/so101"] < 3 for r in scored)
    assert not torch.equal(stem_before, trainer.policy.vision_language.vision.stem[0].weight)
    assert not torch.equal(expert_before, trainer.policy.expert.head.weight)
    assert VLAPolicy.from_pretrained(checkpoint).vision_language.keypoint_head is not None
    with pytest.raises(TrainConfigError, match="main_keypoints"):
        Trainer(config_for(tmp_path / "none", keypoint_placements=4), [episodes])
    with pytest.raises(TrainConfigError, match="raise policy.main_keypoints"):  # the cube and the tool: 2 needed
        Trainer(config_for(tmp_path / "one", **{**settings, "policy": tiny_policy_settings(main_keypoints=1)}),
                [episodes])
    with pytest.raises(TrainConfigError, match="keypoint_plan_share"):
        config_for(tmp_path / "share", keypoint_plan_share=1.5)
