"""Normals (depthface.geometry.normals): analytic planes, spheres and polyhedra."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from depthface.errors import DepthfaceError
from depthface.geometry.camera import Intrinsics, position_image
from depthface.geometry.normals import position_normals, vertex_normals

F64 = torch.float64
K = Intrinsics(fx=520.0, fy=575.0, cx=70.3, cy=48.6, width=140, height=100)


def _rays(k: Intrinsics) -> np.ndarray:
    u, v = np.meshgrid(np.arange(k.width, dtype=np.float64), np.arange(k.height, dtype=np.float64))
    return np.stack(((u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u)), axis=-1)


def _normals(depth: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` normals of a depth map through its position image."""
    pos = position_image(torch.from_numpy(depth)[None, None], K)
    return position_normals(pos)[0].permute(1, 2, 0).numpy()


def test_plane_has_one_normal_toward_the_camera_and_none_on_the_border():
    n = np.array([0.2, -0.3, 1.0]) / np.linalg.norm([0.2, -0.3, 1.0])  # n . X = 900: n points away from the camera
    depth = 900.0 / (_rays(K) @ n)
    out = _normals(depth)
    np.testing.assert_allclose(out[1:-1, 1:-1], np.broadcast_to(-n, out[1:-1, 1:-1].shape), atol=1e-12)
    for border in (out[0], out[-1], out[:, 0], out[:, -1]):
        assert not border.any()


def test_fronto_parallel_plane_at_known_depth():
    out = _normals(np.full((K.height, K.width), 750.0))
    np.testing.assert_allclose(out[1:-1, 1:-1].reshape(-1, 3), [[0.0, 0.0, -1.0]] * ((K.height - 2) * (K.width - 2)),
                               atol=1e-15)


def test_sphere_normals_are_radial():
    c, radius = np.array([10.0, -5.0, 800.0]), 60.0  # inside the image
    r = _rays(K)
    rr, rc = (r * r).sum(-1), r @ c
    disc = rc**2 - rr * (c @ c - radius**2)
    depth = np.where(disc > 0, (rc - np.sqrt(np.clip(disc, 0, None))) / rr, 0.0)
    out = _normals(depth)
    p = r * depth[..., None]
    radial = (p - c) / radius  # the outward normal of the visible (near) side faces the camera
    facing = -(radial * p).sum(-1) / np.linalg.norm(p, axis=-1).clip(1e-9) > 0.7
    defined = np.linalg.norm(out, axis=-1) > 0
    assert facing.sum() > 2000 and defined[facing].all()
    # central differences: second-order error, (1.5 mm pixel pitch / 60 mm radius)^2 ~ 6e-4
    np.testing.assert_allclose(out[facing], radial[facing], atol=1e-3)
    assert not out[depth == 0].any()  # no normal where nothing was measured


def test_invalid_neighbour_gives_no_normal_and_batches_are_independent():
    depth = np.full((2, 1, 6, 7), 500.0)
    depth[1, 0, 3, 3] = 0.0
    out = position_normals(position_image(torch.from_numpy(depth), K))
    assert out.shape == (2, 3, 6, 7)
    defined = torch.linalg.vector_norm(out, dim=1) > 0
    assert defined[0, 1:-1, 1:-1].all()
    hole = [(3, 3), (2, 3), (4, 3), (3, 2), (3, 4)]  # the hole and its four neighbours
    assert not any(defined[1, v, u] for v, u in hole)
    assert defined[1, 1:-1, 1:-1].sum() == 4 * 5 - len(hole)
    with pytest.raises(DepthfaceError, match="position"):
        position_normals(torch.zeros(3, 6, 7))


def _octahedron() -> tuple[np.ndarray, np.ndarray]:
    """The regular octahedron: vertices +-e_i, one triangle per octant wound counter-clockwise from outside."""
    v = np.concatenate((np.eye(3), -np.eye(3)))
    tris = []
    for s in itertools.product((0, 1), repeat=3):
        a, b, c = (3 * s[0], 1 + 3 * s[1], 2 + 3 * s[2])
        if np.cross(v[b] - v[a], v[c] - v[a]) @ (v[a] + v[b] + v[c]) < 0:
            b, c = c, b
        tris.append((a, b, c))
    return v, np.array(tris)


def test_vertex_normals_of_a_regular_octahedron_are_radial():
    v, tri = _octahedron()
    scale = torch.tensor([[1.0], [2.0]], dtype=F64)[..., None]  # a batch: the octahedron and a twice larger copy
    out = vertex_normals(scale * torch.from_numpy(v), torch.from_numpy(tri))
    assert out.shape == (2, 6, 3)
    torch.testing.assert_close(out, torch.from_numpy(v).expand(2, 6, 3), rtol=0, atol=1e-15)


def test_vertex_normals_of_a_tetrahedron_point_outward_and_unused_vertices_are_zero():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [5, 5, 5]], dtype=F64)
    tri = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # counter-clockwise seen from outside
    n = vertex_normals(v, tri)
    torch.testing.assert_close(torch.linalg.vector_norm(n[:4], dim=1), torch.ones(4, dtype=F64))
    assert (((v[:4] - v[:4].mean(0)) * n[:4]).sum(1) > 0).all()
    torch.testing.assert_close(n[0], -torch.ones(3, dtype=F64) / 3**0.5)  # the corner's three faces weigh equally
    assert not n[4].any()
    with pytest.raises(DepthfaceError, match="triangles"):
        vertex_normals(v, tri[:, :2])
