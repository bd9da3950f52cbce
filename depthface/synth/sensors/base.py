"""What every sensor model provides: :class:`SensorProfile`, the base of one dataclass per sensor family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.synth.params import ADDED, check_params
from depthface.synth.render import Window, clip_window

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
        draws, the same values)."""
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
