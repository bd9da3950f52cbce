"""Experiment helpers with analytic answers."""

from __future__ import annotations

import roma
import torch

from depthface.evaluation.experiments import fit_eq7_directly
from depthface.geometry.rotations import euler_to_matrix, geodesic_angle_deg


def _matrix_exp_so3(w: torch.Tensor) -> torch.Tensor:
    """The exponential of the skew matrix of ``w (B, 3)``, written out: the reference roma must match."""
    z = torch.zeros_like(w[:, 0])
    k = torch.stack((torch.stack((z, -w[:, 2], w[:, 1]), -1), torch.stack((w[:, 2], z, -w[:, 0]), -1),
                     torch.stack((-w[:, 1], w[:, 0], z), -1)), 1)
    return torch.linalg.matrix_exp(k)


def test_roma_exp_map_is_a_rotation_by_the_vector_length():
    """fit_eq7_directly's exp map is roma.rotvec_to_rotmat: equal to the matrix exponential (1e-6), a rotation
    by |w| about w (angle and a z-axis case), also near zero where the correction starts."""
    w = torch.tensor([[0.0, 0.0, 0.3], [0.2, -0.1, 0.05], [1e-9, 2e-9, -1e-9], [0.0, 0.0, 0.0],
                      [1.5, -2.0, 0.7]], dtype=torch.float64)
    R = roma.rotvec_to_rotmat(w)
    torch.testing.assert_close(R, _matrix_exp_so3(w), atol=1e-6, rtol=0)
    torch.testing.assert_close(R[0], euler_to_matrix(torch.tensor([0.0, 0.0, 0.3 * 180 / torch.pi],
                                                                  dtype=torch.float64)), atol=1e-12, rtol=0)
    torch.testing.assert_close(geodesic_angle_deg(R[1], torch.eye(3, dtype=torch.float64)),
                               torch.rad2deg(w[1].norm()), atol=1e-9, rtol=0)


def test_direct_eq7_fit_recovers_a_pose_when_the_cloud_is_the_landmarks():
    """Cloud = a dense sampling around the true posed landmarks; from 6 deg / 8 mm off, eq. 7 finds the truth."""
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(68, 3, generator=g, dtype=torch.float64) * 40.0
    normals = torch.nn.functional.normalize(torch.randn(68, 3, generator=g, dtype=torch.float64), dim=-1)
    R_true = euler_to_matrix(torch.tensor([[20.0, -10.0, 5.0]], dtype=torch.float64))
    t_true = torch.tensor([[30.0, -20.0, 900.0]], dtype=torch.float64)
    cloud = ref @ R_true[0].T + t_true[0]
    R0 = euler_to_matrix(torch.tensor([[26.0, -10.0, 5.0]], dtype=torch.float64))
    R, t = fit_eq7_directly(R0, t_true + torch.tensor([[8.0, 0.0, 0.0]], dtype=torch.float64), ref, normals,
                            [cloud], visible_only=False, steps=400)
    assert float(geodesic_angle_deg(R, R_true)) < 0.5
    assert float((t - t_true).norm()) < 1.0
