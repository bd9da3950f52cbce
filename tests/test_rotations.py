"""Rotations: round trips, gradients, and hand-built pins of the Biwi Euler convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depthface.geometry.rotations import (
    euler_to_matrix,
    euler_to_quaternion,
    geodesic_angle_deg,
    matrix_to_euler,
    matrix_to_quaternion,
    normalize_quaternion,
    quaternion_multiply,
    quaternion_to_euler,
    quaternion_to_matrix,
    random_quaternion,
    random_rotation,
)

F64 = torch.float64
NOSE = torch.tensor([0.0, 0.0, -1.0], dtype=F64)  # the nose direction in the head frame


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_ypr(n: int, limits=(80.0, 80.0, 80.0), seed: int = 0) -> torch.Tensor:
    u = torch.rand(n, 3, generator=_gen(seed), dtype=F64) * 2 - 1
    return u * torch.tensor(limits, dtype=F64)


# ----------------------------------------------------------------------------- hand-built pins


def test_yaw_only_is_ry_written_out():
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    expected = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=F64)
    R = euler_to_matrix(torch.tensor([30.0, 0.0, 0.0], dtype=F64))
    torch.testing.assert_close(R, expected, atol=1e-12, rtol=0)
    assert R[0, 2].item() == pytest.approx(0.5)


def test_pitch_only_is_rx_of_minus_pitch_written_out():
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    # Rx(-20) = [[1, 0, 0], [0, cos, sin], [0, -sin, cos]]
    expected = torch.tensor([[1, 0, 0], [0, c, s], [0, -s, c]], dtype=F64)
    R = euler_to_matrix(torch.tensor([0.0, 20.0, 0.0], dtype=F64))
    torch.testing.assert_close(R, expected, atol=1e-12, rtol=0)


def test_roll_only_is_rz_written_out():
    c, s = math.cos(math.radians(-40)), math.sin(math.radians(-40))
    expected = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=F64)
    R = euler_to_matrix(torch.tensor([0.0, 0.0, -40.0], dtype=F64))
    torch.testing.assert_close(R, expected, atol=1e-12, rtol=0)


def test_composition_order_rx_ry_rz():
    y, p, r = (math.radians(a) for a in (25.0, -15.0, 35.0))
    rx = np.array([[1, 0, 0], [0, math.cos(-p), -math.sin(-p)], [0, math.sin(-p), math.cos(-p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    R = euler_to_matrix(torch.tensor([25.0, -15.0, 35.0], dtype=F64)).numpy()
    np.testing.assert_allclose(R, rx @ ry @ rz, atol=1e-12)
    # A different order gives a different matrix, so the pin above is not vacuous.
    assert np.abs(R - rz @ ry @ rx).max() > 1e-2


def test_positive_yaw_turns_nose_to_image_left():
    nose = euler_to_matrix(torch.tensor([30.0, 0.0, 0.0], dtype=F64)) @ NOSE
    assert nose[0] < -0.4 and abs(nose[1]) < 1e-12  # x < 0: image left
    assert (euler_to_matrix(torch.tensor([-30.0, 0.0, 0.0], dtype=F64)) @ NOSE)[0] > 0.4


def test_positive_pitch_raises_nose():
    nose = euler_to_matrix(torch.tensor([0.0, 25.0, 0.0], dtype=F64)) @ NOSE
    assert nose[1] < -0.4 and abs(nose[0]) < 1e-12  # y < 0: image up
    assert (euler_to_matrix(torch.tensor([0.0, -25.0, 0.0], dtype=F64)) @ NOSE)[1] > 0.4


def test_positive_roll_is_clockwise_in_image():
    # The head's x axis (image right at identity) turns toward image down (+y) for positive roll:
    # right -> down is clockwise on screen (y down).
    x_axis = euler_to_matrix(torch.tensor([0.0, 0.0, 30.0], dtype=F64)) @ torch.tensor([1.0, 0, 0], dtype=F64)
    assert x_axis[1] == pytest.approx(0.5) and x_axis[0] == pytest.approx(math.sqrt(3) / 2)


def test_hand_built_quaternions():
    h = math.radians(30) / 2
    # yaw = 30: rotation about +y by 30 deg
    torch.testing.assert_close(euler_to_quaternion(torch.tensor([30.0, 0, 0], dtype=F64)),
                               torch.tensor([math.cos(h), 0, math.sin(h), 0], dtype=F64))
    # pitch = 30: rotation about x by -30 deg
    torch.testing.assert_close(euler_to_quaternion(torch.tensor([0, 30.0, 0], dtype=F64)),
                               torch.tensor([math.cos(h), -math.sin(h), 0, 0], dtype=F64))
    # 90 deg about z
    R = quaternion_to_matrix(torch.tensor([math.sqrt(0.5), 0, 0, math.sqrt(0.5)], dtype=F64))
    torch.testing.assert_close(R, torch.tensor([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=F64), atol=1e-12, rtol=0)


# ------------------------------------------------------------------- Biwi community extraction


def _biwi_community_angles(R: np.ndarray) -> np.ndarray:
    """Hopenet / FSA-Net style extraction from the Biwi pose matrix, written independently."""
    M = R.T
    pitch = np.arctan2(M[2, 1], M[2, 2]) * 180 / np.pi
    yaw = -np.arctan2(-M[2, 0], np.sqrt(M[2, 1] ** 2 + M[2, 2] ** 2)) * 180 / np.pi
    roll = -np.arctan2(M[1, 0], M[0, 0]) * 180 / np.pi
    return np.array([yaw, pitch, roll])


def test_matrix_to_euler_matches_biwi_community_code():
    ypr = _random_ypr(200, seed=1)
    R = euler_to_matrix(ypr)
    ours = matrix_to_euler(R).numpy()
    theirs = np.stack([_biwi_community_angles(r) for r in R.numpy()])
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    np.testing.assert_allclose(ours, ypr.numpy(), atol=1e-9)


# ------------------------------------------------------------------------------ round trips


def test_quaternion_matrix_round_trip():
    q = random_quaternion(500, generator=_gen(2), dtype=F64)
    assert (q[:, 0] >= 0).all()
    R = quaternion_to_matrix(q)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=F64).expand(500, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(500, dtype=F64))
    torch.testing.assert_close(matrix_to_quaternion(R), q, atol=1e-12, rtol=0)


def test_matrix_to_quaternion_half_turns_and_sign():
    # 180 deg rotations (w = 0) and a rotation given with w < 0
    q = torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0.6, 0.8, 0]], dtype=F64)
    torch.testing.assert_close(matrix_to_quaternion(quaternion_to_matrix(q)).abs(), q.abs(), atol=1e-12, rtol=0)
    neg = -normalize_quaternion(torch.tensor([0.3, 0.2, -0.5, 0.4], dtype=F64))
    out = matrix_to_quaternion(quaternion_to_matrix(neg))
    torch.testing.assert_close(out, -neg, atol=1e-12, rtol=0)


def test_quaternion_to_matrix_normalises():
    q = torch.tensor([0.3, 0.2, -0.5, 0.4], dtype=F64)
    torch.testing.assert_close(quaternion_to_matrix(7.5 * q), quaternion_to_matrix(q))


def test_euler_round_trips():
    ypr = _random_ypr(500, limits=(89.0, 179.0, 179.0), seed=3)
    torch.testing.assert_close(matrix_to_euler(euler_to_matrix(ypr)), ypr, atol=1e-9, rtol=0)
    torch.testing.assert_close(quaternion_to_euler(euler_to_quaternion(ypr)), ypr, atol=1e-9, rtol=0)
    torch.testing.assert_close(quaternion_to_matrix(euler_to_quaternion(ypr)), euler_to_matrix(ypr),
                               atol=1e-12, rtol=0)
    R = random_rotation(500, generator=_gen(4), dtype=F64)
    torch.testing.assert_close(euler_to_matrix(matrix_to_euler(R)), R, atol=1e-9, rtol=0)


def test_quaternion_multiply_composes_matrices():
    q1 = random_quaternion(50, generator=_gen(5), dtype=F64)
    q2 = random_quaternion(50, generator=_gen(6), dtype=F64)
    torch.testing.assert_close(quaternion_to_matrix(quaternion_multiply(q1, q2)),
                               quaternion_to_matrix(q1) @ quaternion_to_matrix(q2))


def test_leading_dims_and_float32():
    q = random_quaternion(2, 3, 5, generator=_gen(7))
    assert q.dtype == torch.float32
    R = quaternion_to_matrix(q)
    assert R.shape == (2, 3, 5, 3, 3) and R.dtype == torch.float32
    assert matrix_to_quaternion(R).shape == (2, 3, 5, 4)
    torch.testing.assert_close(matrix_to_quaternion(R), q, atol=1e-5, rtol=0)
    ypr = _random_ypr(30, seed=8).float().reshape(5, 6, 3)
    assert euler_to_matrix(ypr).shape == (5, 6, 3, 3)
    torch.testing.assert_close(matrix_to_euler(euler_to_matrix(ypr)), ypr, atol=1e-3, rtol=0)


# ------------------------------------------------------------------------------- geodesic angle


def test_geodesic_angle():
    ypr = _random_ypr(100, seed=9)
    R1 = euler_to_matrix(ypr)
    for angle in (0.0, 1e-4, 0.5, 37.0, 120.0, 179.9):
        axis = torch.randn(100, 3, generator=_gen(10), dtype=F64)
        axis = axis / axis.norm(dim=-1, keepdim=True)
        h = math.radians(angle) / 2
        dq = torch.cat((torch.full((100, 1), math.cos(h), dtype=F64), math.sin(h) * axis), dim=-1)
        R2 = R1 @ quaternion_to_matrix(dq)
        torch.testing.assert_close(geodesic_angle_deg(R1, R2), torch.full((100,), angle, dtype=F64),
                                   atol=1e-9, rtol=0)
        torch.testing.assert_close(geodesic_angle_deg(R2, R1), torch.full((100,), angle, dtype=F64),
                                   atol=1e-9, rtol=0)


def test_geodesic_angle_yaw_difference():
    a = euler_to_matrix(torch.tensor([10.0, 0, 0], dtype=F64))
    b = euler_to_matrix(torch.tensor([-25.0, 0, 0], dtype=F64))
    assert geodesic_angle_deg(a, b).item() == pytest.approx(35.0, abs=1e-10)


# ----------------------------------------------------------------------------------- gradients


def test_gradcheck_quaternion_to_matrix():
    q = torch.randn(4, 4, generator=_gen(11), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(quaternion_to_matrix, (q,))


def test_gradcheck_euler_to_matrix():
    ypr = _random_ypr(4, seed=12).requires_grad_()
    assert torch.autograd.gradcheck(euler_to_matrix, (ypr,))


def test_gradcheck_matrix_to_quaternion_and_euler():
    R = random_rotation(4, generator=_gen(13), dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_quaternion, (R,))
    R2 = euler_to_matrix(_random_ypr(4, seed=14)).requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_euler, (R2,))


def test_geodesic_angle_gradient_finite_at_identity():
    R = torch.eye(3, dtype=F64).repeat(2, 1, 1).requires_grad_()
    geodesic_angle_deg(R, torch.eye(3, dtype=F64)).sum().backward()
    assert torch.isfinite(R.grad).all()


def test_rotation_6d_round_trip_and_known_rotation():
    from depthface.geometry.rotations import matrix_to_rotation_6d, rotation_6d_to_matrix

    R = random_rotation(64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=1e-12)
    # 90 deg about z: first column (0, 1, 0), second column (-1, 0, 0); unnormalised, non-orthogonal input
    d6 = torch.tensor([0.0, 2.0, 0.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    Rz = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    assert torch.allclose(rotation_6d_to_matrix(d6), Rz, atol=1e-12)
    assert torch.allclose(matrix_to_rotation_6d(Rz), torch.tensor([0.0, 1, 0, -1, 0, 0], dtype=torch.float64))
    with pytest.raises(ValueError):
        rotation_6d_to_matrix(torch.zeros(5))


def test_numpy_rotvec_matches_roma_and_known_rotations():
    import roma

    from depthface.errors import DepthfaceError
    from depthface.geometry.rotations import rotvec_to_matrix_np

    Rz = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90 deg about z
    np.testing.assert_allclose(rotvec_to_matrix_np([0.0, 0.0, math.pi / 2]), Rz, atol=1e-15)
    np.testing.assert_array_equal(rotvec_to_matrix_np(np.zeros(3)), np.eye(3))
    w = np.random.default_rng(0).normal(size=(4, 5, 3)) * np.array([1.0, 1e-3, 1e-9, 1e-13])[:, None, None]  # to tiny
    R = rotvec_to_matrix_np(w)
    assert R.shape == (4, 5, 3, 3)
    np.testing.assert_allclose(R, roma.rotvec_to_rotmat(torch.from_numpy(w)).numpy(), atol=1e-15, rtol=0)
    for v, R_v in zip(w.reshape(-1, 3), R.reshape(-1, 3, 3)):  # one vector takes a scalar path: the same map
        np.testing.assert_allclose(rotvec_to_matrix_np(v), R_v, atol=1e-15, rtol=0)
    with pytest.raises(DepthfaceError):
        rotvec_to_matrix_np(np.zeros(4))
