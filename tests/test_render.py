"""The z-buffer rasteriser against analytic scenes (depth exact to 0.01 mm, coverage exact)."""

from __future__ import annotations

import numpy as np
import pytest

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.synth.render import render_depth, render_depth_and_ids, render_into_window

K = Intrinsics(575.816, 575.816, 320.0, 240.0, 640, 480)
K_ASYM = Intrinsics(500.0, 610.0, 301.3, 257.9, 400, 300)


def pixel_rays(K: Intrinsics) -> np.ndarray:
    """(H, W, 3) rays (x/z, y/z, 1) through the pixel centres."""
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    return np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u, dtype=float)], -1)


def quad(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles (0,1,2), (0,2,3) of a planar quad, wound so that it faces the camera."""
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    a, b, c = corners[0], corners[1], corners[2]
    if np.cross(b - a, c - a) @ a > 0:
        tris = tris[:, ::-1]
    return corners.astype(float), tris


def inside_convex(K: Intrinsics, corners: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres surely inside / surely outside the projection of a convex planar polygon (margin px)."""
    uv = np.stack([K.fx * corners[:, 0] / corners[:, 2] + K.cx, K.fy * corners[:, 1] / corners[:, 2] + K.cy], 1)
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    p = np.stack([u, v], -1).astype(float)
    n = len(uv)
    area = sum(uv[i, 0] * uv[(i + 1) % n, 1] - uv[(i + 1) % n, 0] * uv[i, 1] for i in range(n))
    dists = []
    for i in range(n):
        a, b = uv[i], uv[(i + 1) % n]
        e = b - a
        d = (e[0] * (p[..., 1] - a[1]) - e[1] * (p[..., 0] - a[0])) / np.hypot(*e) * np.sign(area)
        dists.append(d)
    dmin = np.min(dists, axis=0)
    return dmin > margin, dmin < -margin


def test_fronto_parallel_plane_exact_depth_and_coverage():
    z = 1234.5
    corners = np.array([[-200.3, -150.7, z], [180.1, -150.7, z], [180.1, 120.2, z], [-200.3, 120.2, z]])
    depth = render_depth(*quad(corners), K)
    assert depth.dtype == np.float32 and depth.shape == (480, 640)
    u = np.arange(640)
    v = np.arange(480)
    cols = (u > K.fx * -200.3 / z + K.cx) & (u < K.fx * 180.1 / z + K.cx)
    rows = (v > K.fy * -150.7 / z + K.cy) & (v < K.fy * 120.2 / z + K.cy)
    expected = rows[:, None] & cols[None, :]
    np.testing.assert_array_equal(depth > 0, expected)
    assert np.abs(depth[expected] - z).max() < 0.01


@pytest.mark.parametrize("K_", [K, K_ASYM], ids=["kinect", "asymmetric"])
def test_tilted_plane_depth_is_ray_plane_intersection(K_):
    # a plane through (40, -30, 1100) with a strongly tilted normal (facing the camera)
    n = np.array([0.55, -0.35, -1.0])
    n /= np.linalg.norm(n)
    p0 = np.array([40.0, -30.0, 1100.0])
    e1 = np.cross(n, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    corners = np.array([p0 + 300 * e1 + 200 * e2, p0 - 250 * e1 + 220 * e2, p0 - 280 * e1 - 240 * e2,
                        p0 + 260 * e1 - 190 * e2])
    depth = render_depth(*quad(corners), K_)
    rays = pixel_rays(K_)
    z_true = (n @ p0) / (rays @ n)
    covered = depth > 0
    assert covered.sum() > 10000
    assert np.abs(depth[covered] - z_true[covered]).max() < 0.01
    # coverage: every centre inside the projected quad, none outside (up to the 1/256 px vertex snapping)
    inside, outside = inside_convex(K_, corners, margin=0.01)
    assert covered[inside].all()
    assert not covered[outside].any()


def sphere_mesh(centre: np.ndarray, r: float, n_lat: int = 60,
                n_lon: int = 120) -> tuple[np.ndarray, np.ndarray, float]:
    """UV sphere with vertices on the sphere, outward CCW, and the largest sagitta of its triangles."""
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    body = np.stack([np.sin(la) * np.cos(lo), -np.cos(la), np.sin(la) * np.sin(lo)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, -1, 0]], body, [[0, 1, 0]]])
    tris = []
    idx = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        tris.append([0, idx(0, j), idx(0, j + 1)])
        tris.append([len(verts) - 1, idx(n_lat - 2, j + 1), idx(n_lat - 2, j)])
    for i in range(n_lat - 2):
        for j in range(n_lon):
            tris.append([idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)])
            tris.append([idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)])
    tris = np.array(tris)
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) < 0
    tris[flip] = tris[flip][:, ::-1]
    # sagitta of each triangle: distance from the sphere to the triangle's plane at its circumcentre
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    nrm = np.cross(b - a, c - a)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    plane_dist = np.abs(np.einsum("ij,ij->i", nrm, a))
    sagitta = r * (1 - plane_dist.min())
    return verts * r + centre, tris, sagitta


def sphere_depth(rays: np.ndarray, centre: np.ndarray, r: float) -> np.ndarray:
    """Near intersection z of each ray (x/z, y/z, 1) with a sphere; NaN where it misses."""
    a = np.einsum("...i,...i", rays, rays)
    b = -2 * rays @ centre
    c = centre @ centre - r * r
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore"):
        return (-b - np.sqrt(disc)) / (2 * a)


def test_sphere_depth_within_tessellation_bound_and_silhouette():
    centre, r = np.array([35.0, -25.0, 900.0]), 110.0
    verts, tris, sag = sphere_mesh(centre, r)
    assert 0.02 < sag < 1.0  # the bound is meaningful (0.075 mm here)
    depth = render_depth(verts, tris, K)
    rays = pixel_rays(K)
    z_outer = sphere_depth(rays, centre, r)  # the mesh lies between the sphere and the sphere shrunk by sag
    z_inner = sphere_depth(rays, centre, r - sag)
    inner = np.isfinite(z_inner)
    assert (depth[inner] > 0).all()
    assert (depth[inner] >= z_outer[inner] - 0.01).all()
    assert (depth[inner] <= z_inner[inner] + 0.01).all()
    assert (depth[~np.isfinite(z_outer)] == 0).all()
    # silhouette radius ~ f r / sqrt(d^2 - r^2) pixels (area-equivalent radius of the covered disc)
    d = np.linalg.norm(centre)
    r_px = np.sqrt((depth > 0).sum() / np.pi)
    assert abs(r_px - K.fx * r / np.sqrt(d * d - r * r)) < 1.0


def test_backface_culling():
    a, b, c = np.array([-100.0, -100, 1000]), np.array([100.0, -100, 1000]), np.array([0.0, 100, 1000])
    verts = np.stack([a, b, c])
    front = np.array([[0, 2, 1]])  # n = (c - a) x (b - a) points to -z: toward the camera
    back = np.array([[0, 1, 2]])
    assert np.cross(verts[2] - verts[0], verts[1] - verts[0]) @ verts[0] < 0
    assert (render_depth(verts, front, K) > 0).sum() > 1000
    assert (render_depth(verts, back, K) == 0).all()
    both = render_depth(verts, back, K, cull_backfaces=False)
    np.testing.assert_array_equal(both, render_depth(verts, front, K))


def test_nearer_triangle_wins_in_either_order():
    near = np.array([[-100.0, -100, 800], [100, -100, 800], [0, 100, 800]])
    far = np.array([[-150.0, -80, 1200], [150, -80, 1200], [0, 150, 1200]])
    verts = np.concatenate([near, far])
    tris = np.array([[0, 2, 1], [3, 5, 4]])
    for order in (tris, tris[::-1]):
        depth, ids = render_depth_and_ids(verts, order, K)
        near_id = int(np.flatnonzero((order == [0, 2, 1]).all(1))[0])
        assert np.isclose(depth[240, 320], 800, atol=0.01)
        assert ids[240, 320] == near_id
        both = depth > 0
        assert set(np.unique(depth[both]).round(2)) == {800.0, 1200.0}
        assert ((depth == 1200) == (ids == 1 - near_id)).all()
        assert (ids[~both] == -1).all()


@pytest.mark.parametrize("z", [1000.0, 1151.632])
def test_shared_edges_cover_each_pixel_exactly_once(z):
    # a rectangle split along its diagonal, corners chosen so the diagonal passes through pixel centres
    # at z = 1000 (ties decided by the top-left rule); render each triangle alone and count coverage
    s = z / K.fx
    u0, v0, u1, v1 = 250.5, 180.5, 330.5, 260.5  # a square in pixels: the diagonal hits integer points
    corners = np.array([[(u0 - K.cx) * s, (v0 - K.cy) * s, z], [(u1 - K.cx) * s, (v0 - K.cy) * s, z],
                        [(u1 - K.cx) * s, (v1 - K.cy) * s, z], [(u0 - K.cx) * s, (v1 - K.cy) * s, z]])
    verts, tris = quad(corners)
    count = np.zeros((480, 640), int)
    for t in tris:
        count += render_depth(verts, t[None], K) > 0
    assert count.max() == 1
    inside = np.zeros((480, 640), bool)
    inside[181:261, 251:331] = True
    np.testing.assert_array_equal(count == 1, inside)


def test_fan_around_a_vertex_on_a_pixel_centre_covers_once():
    # 8 triangles around a vertex exactly on pixel (300, 200); spokes along axes/diagonals hit pixel centres
    z = 1000.0
    s = z / K.fx
    centre = np.array([(300 - K.cx) * s, (200 - K.cy) * s, z])
    ang = np.arange(8) * np.pi / 4
    ring = np.stack([centre[0] + 20 * s * np.cos(ang) / np.maximum(np.abs(np.cos(ang)), np.abs(np.sin(ang))),
                     centre[1] + 20 * s * np.sin(ang) / np.maximum(np.abs(np.cos(ang)), np.abs(np.sin(ang))),
                     np.full(8, z)], 1)
    verts = np.concatenate([centre[None], ring])
    count = np.zeros((480, 640), int)
    for k in range(8):
        t = np.array([[0, 1 + k, 1 + (k + 1) % 8]])
        if np.cross(verts[t[0, 1]] - verts[0], verts[t[0, 2]] - verts[0]) @ verts[0] > 0:
            t = t[:, ::-1]
        count += render_depth(verts, t, K) > 0
    assert count.max() == 1
    assert (count[181:220, 281:320] == 1).all()  # the interior of the fan's 40x40 px square
    assert count[200, 300] == 1


def test_asymmetric_intrinsics_projection():
    z = 950.0
    # a small square whose pixel corners are known: u = fx X / Z + cx, v = fy Y / Z + cy
    us, vs = (100.25, 140.75), (60.4, 95.6)
    X = [(u - K_ASYM.cx) * z / K_ASYM.fx for u in us]
    Y = [(v - K_ASYM.cy) * z / K_ASYM.fy for v in vs]
    corners = np.array([[X[0], Y[0], z], [X[1], Y[0], z], [X[1], Y[1], z], [X[0], Y[1], z]])
    depth = render_depth(*quad(corners), K_ASYM)
    assert depth.shape == (300, 400)
    rows, cols = np.nonzero(depth)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (101, 140, 61, 95)
    assert np.abs(depth[depth > 0] - z).max() < 0.01


def test_window_and_out_compositing():
    verts, tris, _ = sphere_mesh(np.array([0.0, 0.0, 1000.0]), 150.0, 30, 60)
    full = render_depth(verts, tris, K)
    win = (280, 200, 330, 260)
    part = render_depth(verts, tris, K, window=win)
    np.testing.assert_array_equal(part[200:260, 280:330], full[200:260, 280:330])
    part[200:260, 280:330] = 0
    assert (part == 0).all()
    local = np.zeros((60, 50), np.float32)
    render_into_window(verts, tris, K, win, local)
    np.testing.assert_array_equal(local, full[200:260, 280:330])
    # rendering into an existing z-buffer keeps what is nearer
    buf = np.zeros((480, 640), np.float32)
    buf[:, :320] = 800.0  # a nearer occluder on the left half (the sphere starts at 850)
    buf[:, 320:] = 2000.0  # a farther background on the right half
    out = render_depth(verts, tris, K, out=buf)
    assert out is buf
    assert (out[:, :320] == 800.0).all()
    covered = full > 0
    np.testing.assert_array_equal(out[:, 320:][covered[:, 320:]], full[:, 320:][covered[:, 320:]])


def test_near_plane_and_bad_input():
    tri = np.array([[0, 2, 1]])
    behind = np.array([[-100.0, -100, -10], [100, -100, 500], [0, 100, 500]])
    assert (render_depth(behind, tri, K) == 0).all()
    nan = np.array([[np.nan, -100, 500], [100, -100, 500], [0, 100, 500]])
    assert (render_depth(nan, tri, K) == 0).all()
    ok = np.array([[-100.0, -100, 500], [100, -100, 500], [0, 100, 500]])
    with pytest.raises(InputError):
        render_depth(ok, np.array([[0, 1, 3]]), K)
    with pytest.raises(InputError):
        render_depth(ok[:, :2], tri, K)
    with pytest.raises(InputError):
        render_depth(ok, tri.astype(float), K)
    with pytest.raises(InputError):
        render_depth(ok, tri, K, out=np.zeros((480, 640), np.float64))
