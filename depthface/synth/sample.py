"""One complete stored sample, made only where the stored crop looks: the generator's fast path.

:func:`depthface.synth.storage.render_frame` renders the whole ``(H, W)`` frame and then cuts the
``(160, 160)`` metric crop from it. The crop reads only the pixels of its sampling grid, and a simulated
frame is zero outside :func:`~depthface.synth.sensor.head_window` anyway, so :func:`make_sample` simulates
only the crop's bounding box (within the head window): it renders the head straight into the pixels the
sensor reads for that box, composites the scene context and measures there, and gathers the crop from it
(for clean samples: renders the crop's box). The same crop and labels, bit for bit: the rasteriser's value
at a pixel does not depend on the window it renders (:mod:`depthface.synth.render`), and every random
decision of the scene and the sensor is keyed to the pixel or drawn in a fixed number, so a window of the
simulation is exactly the full frame's simulation there (:mod:`depthface.synth.sensor`). About half the
pixels of the head window, and no full-frame buffers. The dataset's few full frames still come from
``render_frame``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from depthface.geometry.camera import Intrinsics
from depthface.geometry.conventions import CROP_PIXELS, CROP_SIZE_MM
from depthface.geometry.crop import CropWindow, crop_window
from depthface.synth.context import composite_context
from depthface.synth.render import Window, render_into_window
from depthface.synth.scenes import Scene, SceneSampler
from depthface.synth.sensor import SimulationProfile, head_window, sensor_input_window

#: the random stream of a sample's sensor simulation: ``SeedSequence([seed, STREAM_SENSOR, index])``
STREAM_SENSOR = 2


def make_sample(sampler: SceneSampler, sensor: SimulationProfile | None, seed: int, scene: Scene,
                quaternion: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sample ``scene.index`` as stored: the ``(160, 160)`` uint16 crop and every label (:func:`label_fields`),
    equal to ``crop_sample(render_frame(...))`` and ``sampler.labels`` of the same sample.

    Args:
        sampler: the dataset's scene sampler (its profile's camera renders).
        sensor: the simulation, or ``None`` for clean samples.
        seed: the dataset seed (the sensor's stream is ``(seed, STREAM_SENSOR, index)``).
        scene: ``sampler.scene(index)``.
        quaternion: the scene's label quaternion (:func:`~depthface.synth.scenes.quaternions`).
    """
    K = sampler.profile.intrinsics
    head, posed = sampler.posed(scene)
    labels = sampler.labels(scene, posed[: len(head)], quaternion)
    cw = crop_window(K, labels["crop_centre"].astype(np.float64), CROP_SIZE_MM, CROP_PIXELS)
    rows, cols, box = _grid(cw, K)
    if sensor is None:
        depth = np.zeros((box[3] - box[1], box[2] - box[0]), np.float32)
        render_into_window(posed, sampler.closed_triangles, K, box, depth)
        crop = _gather(depth, box[0], box[1], rows, cols, True)
    else:
        rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_SENSOR, scene.index]))
        sim = sensor.draw(rng)
        # The frame is simulated in the head window; of it, the crop reads only its own box.
        window = _intersection(head_window(scene.translation, K), box)
        scene_window = sensor_input_window(window, K, sim)
        u0, v0, u1, v1 = scene_window
        depth = np.zeros((max(v1 - v0, 0), max(u1 - u0, 0)), np.float32)
        render_into_window(posed, sampler.closed_triangles, K, scene_window, depth)
        scene_labels = (depth > 0).view(np.uint8)  # LABEL_SUBJECT == 1
        composite_context(depth, scene_labels, scene_window, scene.rotation, scene.translation, K, rng, sim.scene,
                          head, sampler.skull_scale(scene, head))
        frame = sim.sensor.measure_window(depth, (u0, v0), scene_labels, K, rng, window)
        crop = _gather(frame, window[0], window[1], rows, cols, False)
    labels["crop_window"] = cw.as_array()
    labels["crop_intrinsics"] = np.array([K.fx / cw.su, K.fy / cw.sv, (K.cx - cw.u0) / cw.su, (K.cy - cw.v0) / cw.sv])
    return crop, labels


def _grid(cw: CropWindow, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray, Window]:
    """Source row and column of each crop row / column, ``(S,)`` int64 each, -1 outside the image (the
    indices of :func:`depthface.geometry.crop.crop_indices`), and the box ``(u0, v0, u1, v1)`` of the source
    pixels inside the image (empty when none)."""
    rows, cols = np.empty(cw.size, np.int64), np.empty(cw.size, np.int64)
    v0, v1 = _grid_kernel(cw.v0, cw.sv, intrinsics.height, rows)
    u0, u1 = _grid_kernel(cw.u0, cw.su, intrinsics.width, cols)
    box = (u0, v0, u1, v1) if u1 > u0 and v1 > v0 else (0, 0, 0, 0)
    return rows, cols, box


@njit(cache=True, nogil=True)
def _grid_kernel(start, step, n, out):  # pragma: no cover
    """``floor(start + step * j + 0.5)`` for ``j < len(out)``, -1 where outside ``[0, n)``; returns the range
    ``[lo, hi)`` of the values inside."""
    lo = n
    hi = 0
    for j in range(out.shape[0]):
        k = np.int64(np.floor(start + step * np.float64(j) + 0.5))
        inside = 0 <= k < n
        out[j] = k if inside else -1
        if inside:
            lo = min(lo, k)
            hi = max(hi, k + 1)
    return lo, hi


def _intersection(a: Window, b: Window) -> Window:
    """The pixels two boxes share, ``(u0, v0, u1, v1)`` (``u1 <= u0`` or ``v1 <= v0`` when none)."""
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


@njit(cache=True, nogil=True)
def _gather(src, ox, oy, rows, cols, to_uint16):  # pragma: no cover
    """The ``(S, S)`` uint16 crop: pixel ``(cols[b], rows[a])`` of ``src`` (whose element ``[0, 0]`` is pixel
    ``(ox, oy)``), 0 where that pixel lies outside ``src`` or the image (index -1); float depth is rounded half
    to even and clipped to uint16 (``to_uint16``), as :func:`~depthface.synth.render.depth_to_uint16` does."""
    h, w = src.shape
    out = np.zeros((rows.shape[0], cols.shape[0]), np.uint16)
    for a in range(rows.shape[0]):
        r = rows[a] - oy
        if rows[a] < 0 or r < 0 or r >= h:
            continue
        for b in range(cols.shape[0]):
            c = cols[b] - ox
            if cols[b] < 0 or c < 0 or c >= w:
                continue
            if to_uint16:
                out[a, b] = np.uint16(min(max(np.rint(src[r, c]), 0.0), 65535.0))
            else:
                out[a, b] = src[r, c]
    return out
