"""CPU z-buffer rasteriser: a triangle mesh in the camera frame -> a depth frame.

Conventions (:mod:`depthface.geometry.conventions`): millimetres, OpenCV camera frame (x right, y down,
z forward), pixel ``(u, v)`` has its centre at integer coordinates, depth 0 = nothing rendered.

What a pixel gets
    The depth of pixel ``(u, v)`` is *exactly* (to float64 rounding, stored as float32) the z of the
    covering triangle's plane along the ray through the pixel centre: with the plane ``n . p = d``
    (``n = (b - a) x (c - a)``, ``d = n . a``) and the ray ``p = z r``, ``r = ((u - cx)/fx, (v - cy)/fy, 1)``,
    ``1 / z = (n . r) / d``, which is affine in ``(u, v)`` (perspective-correct 1/z interpolation).
    The nearest triangle wins (z-buffer min).

Coverage
    A pixel is covered by a triangle when its centre lies inside the triangle's projection, decided as a
    GPU does: projected vertices are snapped to 1/256 pixel and the edge functions are evaluated exactly in
    int64 (stepped incrementally along rows), so the two triangles sharing an edge see exactly opposite
    values; a centre exactly on an edge belongs to the triangle for which that edge is a *top* or *left*
    edge (the Direct3D / OpenGL top-left rule, image y down). A seamless mesh therefore covers every pixel
    centre inside its silhouette exactly once. Snapping moves silhouettes by at most 1/512 pixel; it never
    changes the depth, which comes from the unsnapped 3D plane.

Culling and clipping
    With ``cull_backfaces`` a triangle is drawn only if its outward normal (counter-clockwise seen from
    outside) faces the camera at the origin: ``n . a < 0``. Triangles with any vertex at ``z <= near``
    (or a non-finite vertex, or one projecting more than 2^21 pixels from the origin) are skipped whole
    (no near-plane clipping): meshes are expected to lie well in front of the camera, as faces and scene
    objects do.

Speed
    One numba kernel (``cache=True``, ``nogil=True``, so threads can render in parallel): vertices are
    projected once, then each triangle scans the pixel centres of its bounding box. About 0.7-1 ms for the
    22k-triangle ICT head at 640x480 on one core. ``window=(u0, v0, u1, v1)`` restricts all work to that
    pixel box (pixels outside are left untouched), e.g. a box around the head; :func:`render_into_window`
    also keeps the buffers window-sized.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics

#: Default near plane (mm): triangles with a vertex at z <= near are skipped.
DEFAULT_NEAR_MM: float = 1.0

Window = tuple[int, int, int, int]


@njit(cache=True, nogil=True)
def _rasterise(verts, tris, fx, fy, cx, cy, near, cull, u0, v0, u1, v1, depth, ids, write_ids, ox,
               oy):  # pragma: no cover
    """Z-buffer ``tris`` into ``depth`` (and ``ids`` if ``write_ids``) inside ``[u0,u1) x [v0,v1)``.

    ``verts`` (V, 3) float64 camera frame mm; ``tris`` (T, 3) int32; ``depth`` (H, W) float32 with 0 =
    empty (non-zero entries occlude); ``ids`` (H, W) int32. Pixel (u, v) is stored at ``[v - oy, u - ox]``
    (buffers covering just the window). Returns -1, or the index of the first triangle with an out-of-range
    vertex index (nothing is drawn then).
    """
    nv = verts.shape[0]
    nt = tris.shape[0]
    for t in range(nt):
        for k in range(3):
            if tris[t, k] < 0 or tris[t, k] >= nv:
                return t
    qx = np.empty(nv, dtype=np.int64)
    qy = np.empty(nv, dtype=np.int64)
    ok = np.empty(nv, dtype=np.bool_)
    for i in range(nv):
        z = verts[i, 2]
        ok[i] = False
        qx[i] = 0
        qy[i] = 0
        if z > near:
            u = (fx * verts[i, 0] / z + cx) * _SUB
            v = (fy * verts[i, 1] / z + cy) * _SUB
            if abs(u) < _GUARD and abs(v) < _GUARD:
                qx[i] = np.int64(np.round(u))
                qy[i] = np.int64(np.round(v))
                ok[i] = True
    ifx = 1.0 / fx
    ify = 1.0 / fy
    for t in range(nt):
        ia = tris[t, 0]
        ib = tris[t, 1]
        ic = tris[t, 2]
        if not (ok[ia] and ok[ib] and ok[ic]):
            continue
        # Plane of the triangle in 3D: n . p = d (float64, from the unsnapped vertices); back faces leave first.
        pax = verts[ia, 0]
        pay = verts[ia, 1]
        paz = verts[ia, 2]
        e1x = verts[ib, 0] - pax
        e1y = verts[ib, 1] - pay
        e1z = verts[ib, 2] - paz
        e2x = verts[ic, 0] - pax
        e2y = verts[ic, 1] - pay
        e2z = verts[ic, 2] - paz
        nx = e1y * e2z - e1z * e2y
        ny = e1z * e2x - e1x * e2z
        nz = e1x * e2y - e1y * e2x
        d = nx * pax + ny * pay + nz * paz
        if cull and not (d < 0.0):
            continue
        if d == 0.0 or not np.isfinite(d):
            continue
        ax = qx[ia]
        ay = qy[ia]
        bx = qx[ib]
        by = qy[ib]
        cx_ = qx[ic]
        cy_ = qy[ic]
        # pixel centres in the bounding box (snapped coordinates are 1/256 px: >> _SHIFT floors)
        xmin = max(u0, -((-min(ax, min(bx, cx_))) >> _SHIFT))
        xmax = min(u1 - 1, max(ax, max(bx, cx_)) >> _SHIFT)
        if xmin > xmax:
            continue
        ymin = max(v0, -((-min(ay, min(by, cy_))) >> _SHIFT))
        ymax = min(v1 - 1, max(ay, max(by, cy_)) >> _SHIFT)
        if ymin > ymax:
            continue
        area = (bx - ax) * (cy_ - ay) - (by - ay) * (cx_ - ax)
        if area == 0:
            continue
        if area < 0:
            bx, by, cx_, cy_ = cx_, cy_, bx, by
        # edge functions E_pq(P) = (qx-px)(Py-py) - (qy-py)(Px-px), >= 0 inside; biased by -1 unless top-left.
        d0x = bx - ax
        d0y = by - ay
        d1x = cx_ - bx
        d1y = cy_ - by
        d2x = ax - cx_
        d2y = ay - cy_
        b0 = 0 if (d0y < 0 or (d0y == 0 and d0x > 0)) else -1
        b1 = 0 if (d1y < 0 or (d1y == 0 and d1x > 0)) else -1
        b2 = 0 if (d2y < 0 or (d2y == 0 and d2x > 0)) else -1
        px0 = xmin * _ISUB
        py0 = ymin * _ISUB
        w0r = d0x * (py0 - ay) - d0y * (px0 - ax) + b0
        w1r = d1x * (py0 - by) - d1y * (px0 - bx) + b1
        w2r = d2x * (py0 - cy_) - d2y * (px0 - cx_) + b2
        s0x = -d0y * _ISUB
        s1x = -d1y * _ISUB
        s2x = -d2y * _ISUB
        s0y = d0x * _ISUB
        s1y = d1x * _ISUB
        s2y = d2x * _ISUB
        # 1/z = ca u + cb v + cc: the exact ray-plane intersection at pixel centre (u, v).
        inv_d = 1.0 / d
        ca = nx * ifx * inv_d
        cb = ny * ify * inv_d
        cc = (nz - nx * cx * ifx - ny * cy * ify) * inv_d
        for y in range(ymin, ymax + 1):
            w0 = w0r
            w1 = w1r
            w2 = w2r
            rowz = cb * y + cc
            for x in range(xmin, xmax + 1):
                if (w0 | w1 | w2) >= 0:
                    iz = ca * x + rowz
                    if iz > 0.0:
                        z = 1.0 / iz
                        old = depth[y - oy, x - ox]
                        if old == 0.0 or z < old:
                            depth[y - oy, x - ox] = z
                            if write_ids:
                                ids[y - oy, x - ox] = t
                w0 += s0x
                w1 += s1x
                w2 += s2x
            w0r += s0y
            w1r += s1y
            w2r += s2y
    return -1


#: Sub-pixel precision of the coverage test: projected vertices are snapped to 1/256 pixel.
_ISUB = 256
_SHIFT = 8  # log2(_ISUB)
_SUB = float(_ISUB)
#: Guard band (in 1/256 pixels): a triangle with a vertex projecting beyond +-2^21 pixels is skipped, which
#: keeps every edge-function product within int64.
_GUARD = float(2 ** 29)


def clip_window(window: Window | None, width: int, height: int) -> Window:
    """``(u0, v0, u1, v1)`` (half-open pixel box) clipped to the image; ``None`` = the whole image."""
    if window is None:
        return 0, 0, width, height
    u0, v0, u1, v1 = (math.floor(w) for w in window)
    return max(0, u0), max(0, v0), min(width, u1), min(height, v1)


def check_depth_frame(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """``depth`` as a C-contiguous float32 ``(H, W)`` array of the camera's size (a copy only when needed).

    Raises:
        InputError: wrong shape for ``intrinsics`` or a non-numeric dtype.
    """
    arr = np.asarray(depth)
    shape = (intrinsics.height, intrinsics.width)
    if arr.shape != shape:
        raise InputError(f"depth has shape {arr.shape}, the intrinsics say {shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"depth must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


@njit(cache=True, nogil=True)
def _to_uint16(depth, out):  # pragma: no cover
    flat = depth.ravel()
    o = out.ravel()
    for i in range(flat.shape[0]):
        o[i] = np.uint16(min(max(np.rint(flat[i]), 0.0), 65535.0))


def depth_to_uint16(depth: np.ndarray) -> np.ndarray:
    """``(H, W)`` float depth (mm) -> uint16 mm, rounded half to even and clipped to ``[0, 65535]``: exactly
    ``np.clip(np.rint(depth), 0, 65535).astype(np.uint16)`` for finite input, in one pass."""
    arr = np.ascontiguousarray(depth)
    if arr.dtype == np.uint16:
        return arr
    if arr.dtype != np.float32 and arr.dtype != np.float64:
        return np.clip(np.rint(arr), 0, 65535).astype(np.uint16)
    out = np.empty(arr.shape, np.uint16)
    _to_uint16(arr, out)
    return out


def _prepare(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    verts = np.asarray(vertices)
    tris = np.asarray(triangles)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise InputError(f"vertices must be (V, 3), got shape {verts.shape}")
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise InputError(f"triangles must be (T, 3), got shape {tris.shape}")
    if not np.issubdtype(tris.dtype, np.integer):
        raise InputError(f"triangles must be integer vertex indices, got dtype {tris.dtype}")
    return np.ascontiguousarray(verts, dtype=np.float64), np.ascontiguousarray(tris, dtype=np.int32)


def _buffer(out: np.ndarray | None, intrinsics: Intrinsics, dtype, fill, name: str) -> np.ndarray:
    shape = (intrinsics.height, intrinsics.width)
    if out is None:
        return np.full(shape, fill, dtype=dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous or not out.flags.writeable:
        raise InputError(f"{name} must be a writeable C-contiguous {np.dtype(dtype).name} array of shape {shape}, "
                         f"got {out.dtype} {out.shape}")
    return out


def _run(vertices, triangles, intrinsics, cull_backfaces, near, window, depth, ids, write_ids) -> None:
    verts, tris = _prepare(vertices, triangles)
    u0, v0, u1, v1 = clip_window(window, intrinsics.width, intrinsics.height)
    if u1 <= u0 or v1 <= v0 or len(tris) == 0:
        return
    bad = _rasterise(verts, tris, float(intrinsics.fx), float(intrinsics.fy), float(intrinsics.cx),
                     float(intrinsics.cy), float(near), bool(cull_backfaces), u0, v0, u1, v1, depth, ids, write_ids,
                     0, 0)
    if bad >= 0:
        raise InputError(f"triangle {bad} indexes a vertex outside 0..{len(verts) - 1}: {tris[bad].tolist()}")


def render_into_window(vertices: np.ndarray, triangles: np.ndarray, intrinsics: Intrinsics, window: Window,
                       depth: np.ndarray, ids: np.ndarray | None = None, *, cull_backfaces: bool = True,
                       near: float = DEFAULT_NEAR_MM) -> None:
    """Render into buffers that cover exactly ``window`` (the fast path for a crop around a head).

    Args:
        window: ``(u0, v0, u1, v1)`` pixel box, inside the image.
        depth: ``(v1 - v0, u1 - u0)`` float32 C-contiguous z-buffer, updated in place (0 = empty; non-zero
            pixels occlude), element ``[v - v0, u - u0]`` is pixel ``(u, v)``.
        ids: optional int32 buffer of the same shape: the triangle index where this mesh wins.
    """
    u0, v0, u1, v1 = (int(w) for w in window)
    if (u0, v0, u1, v1) != clip_window(window, intrinsics.width, intrinsics.height):
        raise InputError(f"window {window} is not inside the {intrinsics.width}x{intrinsics.height} image")
    shape = (max(v1 - v0, 0), max(u1 - u0, 0))
    for name, buf, dtype in (("depth", depth, np.float32), ("ids", ids, np.int32)):
        if buf is not None and (buf.shape != shape or buf.dtype != dtype or not buf.flags.c_contiguous):
            raise InputError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array of shape {shape}")
    verts, tris = _prepare(vertices, triangles)
    if shape[0] == 0 or shape[1] == 0 or len(tris) == 0:
        return
    bad = _rasterise(verts, tris, float(intrinsics.fx), float(intrinsics.fy), float(intrinsics.cx),
                     float(intrinsics.cy), float(near), bool(cull_backfaces), u0, v0, u1, v1, depth,
                     _DUMMY_IDS if ids is None else ids, ids is not None, u0, v0)
    if bad >= 0:
        raise InputError(f"triangle {bad} indexes a vertex outside 0..{len(verts) - 1}: {tris[bad].tolist()}")


def render_depth(vertices: np.ndarray, triangles: np.ndarray, intrinsics: Intrinsics, *, cull_backfaces: bool = True,
                 near: float = DEFAULT_NEAR_MM, window: Window | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Render a mesh's depth.

    Args:
        vertices: ``(V, 3)`` camera-frame points in mm (any float dtype).
        triangles: ``(T, 3)`` vertex indices, counter-clockwise seen from outside.
        intrinsics: the camera; the frame is ``(intrinsics.height, intrinsics.width)``.
        cull_backfaces: draw only triangles whose outward normal faces the camera (``n . a < 0``).
        near: triangles with a vertex at ``z <= near`` (mm) are skipped.
        window: ``(u0, v0, u1, v1)``, render only pixels ``u0 <= u < u1``, ``v0 <= v < v1``.
        out: optional ``(H, W)`` float32 C-contiguous z-buffer rendered into in place: its non-zero pixels
            occlude what lies behind them (z-buffer min compositing), 0 = empty.

    Returns:
        ``(H, W)`` float32 depth in mm, 0 where nothing was rendered (``out`` itself if given).
    """
    depth = _buffer(out, intrinsics, np.float32, 0.0, "out")
    _run(vertices, triangles, intrinsics, cull_backfaces, near, window, depth, _DUMMY_IDS, False)
    return depth


def render_depth_and_ids(vertices: np.ndarray, triangles: np.ndarray, intrinsics: Intrinsics, *,
                         cull_backfaces: bool = True, near: float = DEFAULT_NEAR_MM, window: Window | None = None,
                         out: np.ndarray | None = None,
                         out_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render depth and the index of the visible triangle (for masks and labels).

    Same arguments as :func:`render_depth`, plus ``out_ids``: an optional ``(H, W)`` int32 buffer written in
    place where this mesh wins the depth test (pixels it does not win keep their value; a new buffer starts
    at -1).

    Returns:
        ``depth`` ``(H, W)`` float32 mm (0 = nothing) and ``triangle_id`` ``(H, W)`` int32 (-1 = none).
    """
    depth = _buffer(out, intrinsics, np.float32, 0.0, "out")
    ids = _buffer(out_ids, intrinsics, np.int32, -1, "out_ids")
    _run(vertices, triangles, intrinsics, cull_backfaces, near, window, depth, ids, True)
    return depth, ids


_DUMMY_IDS = np.full((1, 1), -1, dtype=np.int32)
