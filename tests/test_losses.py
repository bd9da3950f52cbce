"""The paper's losses (eq. 1-7) on hand-made cases, and the AR-GAN step semantics."""

from __future__ import annotations

import math

import pytest
import torch

from depthface.facemodel import load_face_model
from depthface.geometry.rotations import euler_to_quaternion
from depthface.models.losses import (loss_d_adv, loss_d_adv_t, loss_d_reg, loss_f, loss_g, loss_pose_landmark_chamfer,
                                     loss_pose_supervised, loss_r)
from depthface.train.pose import posed_landmarks
from depthface.train.shape import ShapeTrainConfig, ShapeTrainer


def test_eq6_zero_at_truth_and_alpha_weighting():
    q = euler_to_quaternion(torch.tensor([[10.0, -20.0, 5.0]]))
    t = torch.tensor([[1.0, 2.0, 3.0]])
    assert loss_pose_supervised(q, t, q, t) == 0
    assert loss_pose_supervised(q, t, -q, t) == 0  # q and -q are one rotation
    # a 10 mm shift along x: smooth L1 (beta 1) of 10 is 9.5
    assert loss_pose_supervised(q, t + torch.tensor([[10.0, 0, 0]]), q, t).item() == pytest.approx(9.5)
    # a quaternion difference of 0.001 in one component is weighted by alpha = 350: 0.35 -> 0.5 * 0.35^2
    dq = q + torch.tensor([[0.0, 0.001, 0.0, 0.0]])
    assert loss_pose_supervised(dq, t, q, t).item() == pytest.approx(0.5 * 0.35**2, rel=1e-4)


def plane_cloud(z: float = 1000.0, half: float = 150.0, step: float = 1.0) -> torch.Tensor:
    g = torch.arange(-half, half + step, step, dtype=torch.float64)
    x, y = torch.meshgrid(g, g, indexing="xy")
    return torch.stack((x.flatten(), y.flatten(), torch.full_like(x.flatten(), z)), -1)


def test_eq7_known_pose_zero_shift_and_rejection():
    ref = torch.tensor([[0.0, 0.0, 0.0], [20.0, 10.0, 0.0], [-30.0, 5.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.0, 1000.0]], dtype=torch.float64)
    cloud = plane_cloud()
    loss, valid = loss_pose_landmark_chamfer(posed_landmarks(q, t, ref), [cloud])
    assert loss.item() == pytest.approx(0.0) and valid.all()
    loss, valid = loss_pose_landmark_chamfer(posed_landmarks(q, t + torch.tensor([[0, 0, 10.0]], dtype=torch.float64), ref), [cloud])
    assert loss.item() == pytest.approx(3 * 100.0)  # three landmarks, 10 mm each: 100 mm^2 each, summed
    far = ref.clone()
    far[2, 2] = 40.0  # 40 mm off the plane: beyond eps = 30 mm, excluded
    loss, valid = loss_pose_landmark_chamfer(posed_landmarks(q, t, far), [cloud])
    assert loss.item() == pytest.approx(0.0) and valid.tolist() == [[True, True, False]]


def test_eq7_gradient_moves_pose_toward_the_cloud():
    model = load_face_model()
    ref = model.landmarks(model.mean[None])[0].double()
    cloud = plane_cloud(z=1000.0 - 0.0)
    t = torch.tensor([[0.0, 0.0, 1000.0 + 5.0 - float(ref[:, 2].min())]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    loss, _ = loss_pose_landmark_chamfer(posed_landmarks(q, t, ref), [cloud])
    loss.backward()
    assert t.grad[0, 2] > 0  # the landmarks are behind the plane: decreasing z lowers the loss


def test_eq1_to_eq5_values_and_signs():
    zero = torch.zeros(4)
    # D_adv = 0.5 everywhere: eq. 1 = -[log .5 + log .5] - log .5 = 3 log 2
    assert loss_d_adv(zero, zero, zero).item() == pytest.approx(3 * math.log(2))
    assert loss_d_adv(zero, zero, None).item() == pytest.approx(2 * math.log(2))
    big = torch.full((4,), 20.0)
    assert loss_d_adv(big, -big, -big).item() < 1e-6  # a perfect discriminator
    d = torch.randn(4, 10, 3)
    assert loss_d_reg(d, d).item() == 0 and loss_r(d, d + 3.0).item() == pytest.approx(2.5)
    assert loss_g(zero, d, d, form="paper").item() == pytest.approx(math.log(0.5))
    assert loss_g(zero, d, d, form="nonsaturating").item() == pytest.approx(math.log(2))
    # the text's eq. 5 term falls as D takes target generations for source images
    assert loss_d_adv_t(big).item() < loss_d_adv_t(-big).item()
    assert loss_d_adv_t(big, form="printed").item() > loss_d_adv_t(-big, form="printed").item()
    assert loss_f(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)).item() == pytest.approx(1 + 0.03 * 2 + 0.1 * 3)


@pytest.fixture(scope="module")
def trainer(model):
    return ShapeTrainer(ShapeTrainConfig(preset="tiny", lambda1=0.5), model, "cpu")


def batch(model, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = 900.0 + 50 * torch.rand(b, 1, 160, 160, generator=g)
    pos = torch.cat((torch.randn(b, 2, 160, 160, generator=g) * 60, z), 1)
    return {"position": pos, "crop_centre": torch.tensor([[0.0, 0.0, 950.0]]).repeat(b, 1),
            "crop_intrinsics": torch.tensor([[400.0, 400.0, 79.5, 79.5]]).repeat(b, 1),
            "identity": torch.randn(b, model.identity_dim, generator=g), "expression": torch.rand(b, model.expression_dim, generator=g)}


def snapshot(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def changed(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if not k.endswith("num_batches_tracked"))


def test_target_step_leaves_g_and_r_unchanged_and_raises_d_adv_of_target(trainer):
    from depthface.train.common import network_input

    model = trainer.face_model
    n = trainer.net
    src, tgt = batch(model, seed=1), batch(model, seed=2)
    trainer.step(src, tgt)  # warm up optimiser states
    g0, r0, f0, d0 = snapshot(n.G), snapshot(n.R), snapshot(n.F), snapshot(n.D)
    trainer.target_step(tgt)
    assert not changed(g0, snapshot(n.G)) and not changed(r0, snapshot(n.R))  # weights and BN statistics
    assert changed(f0, snapshot(n.F)) and changed(d0, snapshot(n.D))

    x_t = network_input(tgt, "cpu")
    zt = torch.zeros(4, n.cfg.noise_dim)
    n.G.eval()

    def d_adv_target() -> float:
        with torch.no_grad():
            return torch.sigmoid(n.D(n.G(n.condition(n.F(x_t), 1, zt)))[0]).mean().item()

    p0 = d_adv_target()
    trainer.f_target_step(x_t, zt)
    assert d_adv_target() > p0  # a step on F's target term makes target generations more source-like
    n.G.train()


def test_each_optimiser_steps_only_its_module(trainer):
    n = trainer.net
    model = trainer.face_model
    x = batch(model, seed=3)
    params = lambda m: {k: v.detach().clone() for k, v in m.named_parameters()}  # noqa: E731
    before = {k: params(getattr(n, k)) for k in "FRGD"}
    from depthface.models.losses import loss_r as lr
    from depthface.train.common import network_input

    with torch.no_grad():
        f = n.F(network_input(x, "cpu"))
    trainer._step("R", lr(n.regress(f), trainer.targets(x)))
    assert changed(before["R"], params(n.R))
    assert not changed(before["F"], params(n.F)) and not changed(before["G"], params(n.G))
    assert not changed(before["D"], params(n.D))


def test_eq7_visibility_mask_excludes_hidden_landmarks():
    from depthface.train.pose import landmark_normals, visible_landmarks

    model = load_face_model()
    ref = model.landmarks(model.mean[None])[0].float()
    normals = landmark_normals(model)
    assert normals[30, 2] < -0.9  # the nose tip faces the camera (head -z) at the identity pose
    t = torch.tensor([[0.0, 0.0, 1000.0]])
    frontal = visible_landmarks(euler_to_quaternion(torch.tensor([[0.0, 0.0, 0.0]])), t, ref, normals)[0]
    turned = visible_landmarks(euler_to_quaternion(torch.tensor([[60.0, 0.0, 0.0]])), t, ref, normals)[0]
    assert frontal[[30, 36, 45, 8]].all() and not turned[:8].any() and turned[9:17].all()
    cloud = plane_cloud(z=1000.0).float()
    lm = torch.tensor([[[0.0, 0.0, 1010.0], [5.0, 0.0, 1010.0]]])
    full, _ = loss_pose_landmark_chamfer(lm, [cloud])
    masked, valid = loss_pose_landmark_chamfer(lm, [cloud], mask=torch.tensor([[True, False]]))
    assert full.item() == pytest.approx(200.0) and masked.item() == pytest.approx(100.0)
    assert valid.tolist() == [[True, False]]


def test_geodesic_pose_loss_known_angle_and_translation():
    from depthface.geometry.rotations import euler_to_quaternion
    from depthface.models.losses import loss_pose_geodesic

    q0 = euler_to_quaternion(torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64))
    q10 = euler_to_quaternion(torch.tensor([[10.0, 0.0, 0.0]], dtype=torch.float64))
    t = torch.zeros(1, 3, dtype=torch.float64)
    # 10 deg, weight 2: smooth L1 of 20 = 19.5; sign of q does not matter; translation 3 mm on one axis: 2.5
    assert float(loss_pose_geodesic(q10, t, q0, t)) == pytest.approx(19.5, abs=1e-6)
    assert float(loss_pose_geodesic(-q10, t, q0, t)) == pytest.approx(19.5, abs=1e-6)
    assert float(loss_pose_geodesic(q0, t + torch.tensor([[3.0, 0, 0]], dtype=torch.float64), q0, t)) == pytest.approx(2.5)
    q = q10.clone().requires_grad_(True)
    loss_pose_geodesic(q, t, q, t).backward()
    assert torch.isfinite(q.grad).all()
