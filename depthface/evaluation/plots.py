"""Pictures: depth colour maps, shaded mesh renders, contact sheets of datasets, per-frame overlays.

Matplotlib with the non-interactive Agg backend for figures; the per-frame overlay (:func:`overlay_image`,
:func:`save_overlay`) is drawn with NumPy (numba) and Pillow and written by a small PNG encoder (about
10 ms, so it can run on every frame of a sequence). Every function writes a PNG or returns an RGB array.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from numba import njit  # noqa: E402

from depthface.geometry.camera import Intrinsics, position_image  # noqa: E402
from depthface.geometry.normals import position_normals  # noqa: E402
from depthface.geometry.rotations import euler_to_matrix  # noqa: E402
from depthface.synth.render import render_depth  # noqa: E402
from depthface.synth.scenes import close_holes  # noqa: E402


def depth_colormap(depth: np.ndarray, near: float | None = None, far: float | None = None,
                   cmap: str = "turbo") -> np.ndarray:
    """``(H, W)`` depth (mm, 0 = none) -> ``(H, W, 3)`` uint8; no measurement is black.

    By default the colours span 300 mm from the nearest surface (1st percentile), so a face keeps its
    relief whatever lies behind it.
    """
    d = np.asarray(depth, np.float32)
    valid = d > 0
    if not valid.any():
        return np.zeros((*d.shape, 3), np.uint8)
    lo = np.percentile(d[valid], 1) if near is None else near
    hi = lo + 300.0 if far is None else far  # the head spans < 300 mm; farther is all "background"
    rgb = np.empty((*d.shape, 3), np.uint8)
    _colourise(np.ascontiguousarray(d), float(lo), 255.0 / max(hi - lo, 1e-6), colour_table(cmap), rgb)
    return rgb


@njit(cache=True, nogil=True)
def _colourise(d, lo, gain, table, out):  # pragma: no cover - compiled
    """``out (H, W, 3)`` = ``table[round(clip((d - lo) gain, 0, 255))]``, black where ``d <= 0``."""
    h, w = d.shape
    for i in range(h):
        for j in range(w):
            z = d[i, j]
            if z > 0:
                x = min(max((z - lo) * gain, 0.0), 255.0)
                c = int(x + 0.5)
                out[i, j, 0] = table[c, 0]
                out[i, j, 1] = table[c, 1]
                out[i, j, 2] = table[c, 2]
            else:
                out[i, j, 0] = 0
                out[i, j, 1] = 0
                out[i, j, 2] = 0


@lru_cache(maxsize=1)
def overlay_palette() -> tuple[np.ndarray, np.ndarray]:
    """A fixed 256-colour palette for overlay videos and its lookup table.

    Returns:
        ``(256, 3)`` uint8 palette (160 turbo colours, the same blended halfway to white as the mesh dots
        are, black, white and the landmark and axis colours) and a ``(32768,)`` uint8 table from a 15-bit
        colour ``(r >> 3) << 10 | (g >> 3) << 5 | b >> 3`` to the nearest palette entry.
    """
    turbo = colour_table("turbo")[np.linspace(0, 255, 124).astype(int)].astype(np.int64)
    extra = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                      [127, 127, 127], [191, 191, 191]])
    pal = np.concatenate([turbo, turbo // 2 + 127, extra])
    pal = np.concatenate([pal, np.zeros((256 - len(pal), 3), np.int64)]).astype(np.uint8)
    r, g, b = np.meshgrid(np.arange(32), np.arange(32), np.arange(32), indexing="ij")
    keys = np.stack([r, g, b], -1).reshape(-1, 3) * 8 + 4
    from scipy.spatial import cKDTree

    used = pal[: 2 * len(turbo) + len(extra)].astype(np.float64)
    lut = cKDTree(used).query(keys.astype(np.float64))[1].astype(np.uint8)
    pal.setflags(write=False)
    lut.setflags(write=False)
    return pal, lut


def to_palette(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` uint8 indices into :func:`overlay_palette` (a table lookup)."""
    img = np.asarray(image, np.uint8)
    key = ((img[..., 0].astype(np.uint16) >> 3) << 10) | ((img[..., 1].astype(np.uint16) >> 3) << 5) | (img[..., 2] >> 3)
    return overlay_palette()[1][key]


class GifWriter:
    """Collects overlay frames (indexed with :func:`overlay_palette`, a few milliseconds each) and writes an
    animated GIF on :meth:`close` (Pillow). Memory grows with the frames: for long sequences write an MP4.

    Args:
        path: the ``.gif`` file.
        fps: frames per second.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path, self.fps, self.frames = Path(path), float(fps), []

    def append_data(self, image: np.ndarray) -> None:
        from PIL import Image

        frame = Image.fromarray(to_palette(image), mode="P")
        frame.putpalette(overlay_palette()[0].ravel().tolist())
        self.frames.append(frame)

    def close(self) -> None:
        if self.frames:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.frames[0].save(self.path, save_all=True, append_images=self.frames[1:],
                                duration=max(int(round(1000.0 / self.fps)), 10), loop=0, optimize=False)
        self.frames = []


def write_png(path: str | Path, image: np.ndarray, level: int = 1) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB image as a PNG quickly: rows unfiltered, zlib ``level`` (1: fast,
    about 5 ms for 640 x 480; the files are 1.5-2x larger than with adaptive filters)."""
    import struct
    import zlib

    img = np.ascontiguousarray(image, np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape}")
    h, w, _ = img.shape
    raw = np.zeros((h, 1 + 3 * w), np.uint8)
    raw[:, 1:] = img.reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)
    return Path(path)


@lru_cache(maxsize=8)
def colour_table(cmap: str = "turbo") -> np.ndarray:
    """``(256, 3)`` uint8 colours of a matplotlib colour map (a lookup table: indexing it is fast)."""
    table = (plt.get_cmap(cmap)(np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
    table.setflags(write=False)
    return table


def shade_depth(depth: np.ndarray, intrinsics: Intrinsics, light: tuple[float, float, float] = (0.3, -0.4, -1.0)
                ) -> np.ndarray:
    """Lambert-shade a depth map through the normals of its position image
    (:func:`depthface.geometry.normals.position_normals`): ``(H, W)`` -> ``(H, W)`` in [0, 1]; pixels without
    a depth are white, measured pixels without a normal (a silhouette, the border) are at the ambient 0.15."""
    d = np.asarray(depth, np.float64)
    n = position_normals(position_image(torch.from_numpy(d)[None, None], intrinsics))[0].permute(1, 2, 0).numpy()
    L = np.asarray(light) / np.linalg.norm(light)
    shade = np.clip(n @ L, 0, 1) * 0.85 + 0.15
    shade[d <= 0] = 1.0
    return shade


def render_mesh_views(vertices_head: np.ndarray, triangles: np.ndarray, yaws: tuple[float, ...] = (-60.0, 0.0, 60.0),
                      size: int = 256, distance_mm: float = 700.0, fills: list | None = None) -> list[np.ndarray]:
    """Shaded renders ``(size, size)`` of a head-frame mesh seen from several yaw angles (deg).

    ``fills`` (from ``synth.scenes.hole_fills``) closes the eye and mouth openings as the synthetic renders do.
    """
    if fills:
        vertices_head, triangles = close_holes(vertices_head, triangles, fills)
    k = Intrinsics(size * 2.2, size * 2.2, (size - 1) / 2, (size - 1) / 2, size, size)
    out = []
    centre = vertices_head.mean(0)
    for yaw in yaws:
        R = euler_to_matrix(torch.tensor([yaw, 0.0, 0.0], dtype=torch.float64)).numpy()
        cam = (vertices_head - centre) @ R.T + np.array([0.0, 0.0, distance_mm])
        depth = render_depth(cam, triangles, k)
        out.append(shade_depth(depth, k))
    return out


def save_mesh_sheet(path: str | Path, meshes: list[np.ndarray], triangles: np.ndarray, titles: list[str],
                    fills: list | None = None) -> Path:
    """A PNG grid: one row per mesh, three yaw views each (``fills``: see :func:`render_mesh_views`)."""
    rows = len(meshes)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.6 * rows), squeeze=False)
    for r, (verts, title) in enumerate(zip(meshes, titles)):
        for c, img in enumerate(render_mesh_views(verts, triangles, fills=fills)):
            axes[r, c].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def save_contact_sheet(path: str | Path, crops: list[np.ndarray], titles: list[str], cols: int = 8,
                       landmarks_2d: list[np.ndarray | None] | None = None, suptitle: str | None = None) -> Path:
    """A PNG grid of depth crops in colour, optionally with projected 2D landmarks ``(68, 2)``."""
    n = len(crops)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(depth_colormap(crops[i]))
        if landmarks_2d is not None and landmarks_2d[i] is not None:
            lm = landmarks_2d[i]
            ax.scatter(lm[:, 0], lm[:, 1], s=1.5, c="white", linewidths=0)
        ax.set_title(titles[i], fontsize=6)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def overlay_image(depth: np.ndarray, intrinsics: Intrinsics, vertices_camera: np.ndarray | None,
                  landmarks2d: np.ndarray | None, rotation: np.ndarray | None, translation: np.ndarray | None,
                  title: str = "", axis_mm: float = 100.0, scale: int = 1, colorbar: bool = False) -> np.ndarray:
    """The overlay of :func:`save_overlay` as an ``(H', W', 3)`` uint8 image (NumPy and Pillow).

    The depth colour map (300 mm from 200 mm in front of the head centre), the projected mesh (every
    vertex up to 3000, white at half opacity), the 68 landmarks (magenta) and the head's axes (x red,
    y green, z blue, ``axis_mm`` long from the head centre), the frame enlarged ``scale`` times, a title
    strip above and optionally a colour bar (depth in mm) on the right.
    """
    from PIL import Image, ImageDraw

    d = np.asarray(depth, np.float32)
    h, w = d.shape
    near = None if translation is None else float(translation[2]) - 200.0
    rgb = depth_colormap(d, near=near)
    k = intrinsics

    def proj(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float64)
        return np.stack((k.fx * p[..., 0] / p[..., 2] + k.cx, k.fy * p[..., 1] / p[..., 2] + k.cy), -1)

    if vertices_camera is not None:
        pts = np.asarray(vertices_camera)[:: max(1, len(vertices_camera) // 3000)]
        pts = pts[pts[:, 2] > 0]
        uv = np.rint(proj(pts)).astype(np.int64)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        uv = uv[inside]
        rgb[uv[:, 1], uv[:, 0]] = rgb[uv[:, 1], uv[:, 0]] // 2 + 127
    s = max(1, int(scale))
    if s > 1:
        rgb = np.repeat(np.repeat(rgb, s, axis=0), s, axis=1)
    strip = 14 * s if title else 0
    bar = 60 * s if colorbar else 0
    canvas = np.zeros((strip + h * s, w * s + bar, 3), np.uint8)
    canvas[strip:, : w * s] = rgb
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    at = lambda u, v: (float(u) * s + (s - 1) / 2, float(v) * s + (s - 1) / 2 + strip)  # noqa: E731
    if landmarks2d is not None:
        r = 1.5 * s
        for u, v in np.asarray(landmarks2d, np.float64):
            if np.isfinite(u) and np.isfinite(v):
                x, y = at(u, v)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 0, 255))
    if rotation is not None and translation is not None and translation[2] > 0:
        t = np.asarray(translation, np.float64)
        o = proj(t[None])[0]
        for axis, colour in zip(np.eye(3), ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
            e = t + axis_mm * np.asarray(rotation) @ axis
            if e[2] > 0:
                draw.line((*at(*o), *at(*proj(e[None])[0])), fill=colour, width=2 * s)
    if title:
        draw.text((2 * s, 1), title, fill=(255, 255, 255), font_size=11 * s)
    if colorbar:
        lo = float(np.percentile(d[d > 0], 1)) if near is None and (d > 0).any() else (near or 0.0)
        x0, y0, y1 = w * s + 8 * s, strip + 10 * s, strip + h * s - 10 * s
        ramp = colour_table("turbo")[np.linspace(0, 255, max(y1 - y0, 2)).astype(int)]
        canvas = np.asarray(img).copy()
        canvas[y0:y0 + len(ramp), x0:x0 + 12 * s] = ramp[:, None]
        img = Image.fromarray(canvas)
        draw = ImageDraw.Draw(img)
        for frac in (0.0, 0.5, 1.0):
            y = y0 + frac * (len(ramp) - 1)
            draw.text((x0 + 14 * s, y - 5 * s), f"{lo + 300 * frac:.0f}", fill=(255, 255, 255), font_size=9 * s)
        draw.text((x0, y0 - 10 * s), "mm", fill=(255, 255, 255), font_size=9 * s)
    return np.asarray(img)


def save_overlay(path: str | Path, depth: np.ndarray, intrinsics: Intrinsics, vertices_camera: np.ndarray | None,
                 landmarks2d: np.ndarray | None, rotation: np.ndarray | None, translation: np.ndarray | None,
                 title: str = "", axis_mm: float = 100.0, scale: int = 1, colorbar: bool = False) -> Path:
    """Write :func:`overlay_image` as a PNG (:func:`write_png`): depth colour map with the projected mesh
    (points), the 68 landmarks and the head's axes (x red, y green, z blue, ``axis_mm`` long from the head
    centre)."""
    img = overlay_image(depth, intrinsics, vertices_camera, landmarks2d, rotation, translation, title, axis_mm,
                        scale, colorbar)
    return write_png(path, img)
