"""Figures of evaluations: shaded mesh renders and sheets, contact sheets of dataset crops.

Matplotlib with the non-interactive Agg backend. The per-frame pictures of a prediction (depth colour
map, overlay, PNG and GIF writers) are the product's: :mod:`depthface.inference.pictures`. Every function
writes a PNG or returns an image array.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from depthface.geometry.camera import Intrinsics, position_image  # noqa: E402
from depthface.geometry.normals import position_normals  # noqa: E402
from depthface.geometry.rotations import euler_to_matrix  # noqa: E402
from depthface.inference.pictures import depth_colormap  # noqa: E402
from depthface.synth.render import render_depth  # noqa: E402
from depthface.synth.scenes import close_holes  # noqa: E402


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
