"""What every sensor model provides: :class:`SensorProfile`, the base of one dataclass per sensor family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.synth.params import ADDED, check_params
from depthface.synth.render import Window, clip_window
from depthface.synth.sensors.kernels import stamp_holes

if TYPE_CHECKING:  # pragma: no cover
    from depthface.synth.sensor import SimulationProfile

#: pixels around a window whose scene depth every sensor reads (lateral jitter reaches 4 px, normals 1)
BASE_MARGIN_PX = 5


@dataclass(frozen=True)
class SensorProfile:
    """A sensor's measurement model: scene depth (+ labels) in, the frame the sensor delivers out.

    One frozen dataclass per sensor family (:class:`~depthface.synth.sensors.StructuredLightProfile`,
    :class:`~depthface.synth.sensors.TimeOfFlightProfile`); every field is a documented parameter, ranges
    ``(low, high)`` are drawn per frame. A subclass implements :meth:`measure` and, when it reads pixels
    farther than :data:`BASE_MARGIN_PX` from those it writes, :meth:`input_margin`.
    """

    #: the family's name, written to a manifest when it is not ``structured_light`` (generator version 1)
    family: ClassVar[str] = "base"
    #: intrinsics preset (``Intrinsics.preset``) of the sensor's own camera: a dataset simulated with it is
    #: rendered with that camera; ``None`` = the dataset profile's camera.
    camera: str | None = field(default=None, metadata=ADDED)

    def __post_init__(self) -> None:
        check_params(self, self._error, **self._check_args())
        if self.camera is not None:
            Intrinsics.preset(self.camera)  # raises InputError naming the presets

    def _check_args(self) -> dict:
        return {}

    def _error(self, msg: str) -> InputError:
        return InputError(f"{self.family} sensor: {msg}")

    def input_margin(self, intrinsics: Intrinsics) -> tuple[int, int, int, int]:
        """Pixels ``(left, top, right, bottom)`` around a window that :meth:`measure` reads."""
        return BASE_MARGIN_PX, BASE_MARGIN_PX, BASE_MARGIN_PX, BASE_MARGIN_PX

    def measure(self, depth: np.ndarray, origin: tuple[int, int], labels: np.ndarray | None, intrinsics: Intrinsics,
                rng: np.random.Generator, window: Window) -> np.ndarray:
        """The sensor's frame of a scene, computed in ``window`` only.

        Args:
            depth: ``(h, w)`` float32 scene depth in mm (0 = nothing) of the pixels from ``origin`` = ``(u, v)``
                on; it must hold the window plus :meth:`input_margin` (clipped to the image) or less of it.
            labels: ``(h, w)`` uint8 scene labels (``depthface.synth.context.LABEL_*``) or ``None``.
            intrinsics: the camera.
            rng: advanced by a fixed number of draws (independent of window and content).
            window: ``(u0, v0, u1, v1)`` clipped to the image.

        Returns:
            ``(H, W)`` uint16 depth in mm, 0 = no measurement and 0 outside the window.

        Raises:
            InputError: NaN / inf / negative depth among the pixels read.
        """
        u0, v0, u1, v1 = window
        out = np.zeros((intrinsics.height, intrinsics.width), np.uint16)
        out[v0:max(v1, v0), u0:max(u1, u0)] = self.measure_window(depth, origin, labels, intrinsics, rng, window)
        return out

    def measure_window(self, depth: np.ndarray, origin: tuple[int, int], labels: np.ndarray | None,
                       intrinsics: Intrinsics, rng: np.random.Generator, window: Window) -> np.ndarray:
        """:meth:`measure` restricted to its window: ``(v1 - v0, u1 - u0)`` uint16 (no pixels for an empty
        window), element ``[v - v0, u - u0]`` is pixel ``(u, v)`` of the frame :meth:`measure` returns (the same
        draws, the same values).

        The frame's draws, a fixed number in a fixed order whatever the window (so a window of the frame is
        simulated exactly as the full frame is there): the seed of the per-pixel randomness, the family's
        per-frame value (:meth:`_frame_draw`), the number of holes (``holes_per_frame`` per 640x480, Poisson) and
        their shapes (anywhere in the frame, semi-axes in ``hole_radius_px``). Then the family's kernel
        (:meth:`_kernel`) and the holes."""
        H, W = intrinsics.height, intrinsics.width
        region, (u0, v0, u1, v1) = self._work_region(depth, origin, intrinsics, window, self._kernel_margin())
        seed = np.uint64(rng.integers(0, 2**63, dtype=np.int64))
        frame_value = self._frame_draw(rng)
        n_holes = int(rng.poisson(self.holes_per_frame * W * H / (640 * 480)))
        hole_draws = rng.random((n_holes, 5))
        ox, oy = window[0], window[1]
        out = np.zeros((max(window[3] - oy, 0), max(window[2] - ox, 0)), np.uint16)
        if u1 <= u0 or v1 <= v0:
            return out
        lab = labels if labels is not None else np.zeros((1, 1), np.uint8)
        bad = self._kernel(depth, origin, lab, labels is not None, out, (ox, oy), intrinsics, region,
                           (u0, v0, u1, v1), seed, frame_value)
        if bad:
            raise InputError(f"depth has {bad} NaN/inf/negative pixels (use 0 for no measurement)")
        if n_holes:
            lo, hi = (float(r) for r in self.hole_radius_px)
            stamp_holes(out, hole_draws, float(W), float(H), lo, hi, u0, v0, u1, v1, ox, oy)
        return out

    def _kernel_margin(self) -> int:
        """Pixels around the window whose scene depth the kernel reads (normals, edges, lateral jitter)."""
        return BASE_MARGIN_PX

    def _frame_draw(self, rng: np.random.Generator) -> float:
        """The family's one per-frame random value (e.g. how much hair drops out), drawn after the seed."""
        raise NotImplementedError

    def _kernel(self, depth: np.ndarray, origin: tuple[int, int], labels: np.ndarray, use_labels: bool,
                out: np.ndarray, out_origin: tuple[int, int], intrinsics: Intrinsics, region: Window, window: Window,
                seed: np.uint64, frame_value: float) -> int:
        """Measure ``window`` (inside the work ``region``, both ``(u0, v0, u1, v1)``) into ``out``, whose element
        ``[0, 0]`` is pixel ``out_origin``; returns the number of invalid depths met."""
        raise NotImplementedError

    def _work_region(self, depth: np.ndarray, origin: tuple[int, int], intrinsics: Intrinsics, window: Window,
                     margin: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
        """The region a kernel works on, ``(c0, r0, c1, r1)``: the window plus ``margin`` pixels, clipped to the
        image and to the depth box from ``origin``; and the window clipped to that region, ``(u0, v0, u1, v1)``."""
        ou, ov = origin
        u0, v0, u1, v1 = window
        c0, r0, c1, r1 = clip_window((u0 - margin, v0 - margin, u1 + margin, v1 + margin), intrinsics.width,
                                     intrinsics.height)
        c0, r0 = max(c0, ou), max(r0, ov)
        c1, r1 = min(c1, ou + depth.shape[1]), min(r1, ov + depth.shape[0])
        return (c0, r0, c1, r1), (max(u0, c0), max(v0, r0), min(u1, c1), min(v1, r1))

    @classmethod
    def preset(cls, name: str) -> "SimulationProfile":
        """The named simulation: ``SimulationProfile.preset(name)`` (a scene and a sensor).

        Kept for callers written before the scene / sensor split, when this class held both."""
        from depthface.synth.sensor import SimulationProfile

        return SimulationProfile.preset(name)
