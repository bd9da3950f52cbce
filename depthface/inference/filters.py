"""Temporal filters of vector signals and of head poses (for :mod:`depthface.inference.tracking`).

* :class:`OneEuroFilter` (Casiez, Roussel, Vogel, CHI 2012): an exponential smoother whose cut-off
  frequency rises with the signal's speed: steady heads are smoothed strongly, fast moves pass with
  little lag;
* :class:`ConstantVelocityFilter`: an alpha-beta filter (the steady-state Kalman filter of a constant
  velocity model): no lag on a constant-speed motion, noise reduced by a known factor.

Both work on ``(D,)`` vectors with time stamps in seconds; :class:`PoseFilter` applies one to the head
centre (mm) and one to the rotation's quaternion (sign-aligned with the previous one, renormalised after
filtering). A filter holds the state of one signal; ``reset()`` forgets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from depthface.errors import DepthfaceError

__all__ = ["OneEuroFilter", "ConstantVelocityFilter", "PoseFilter"]


def _smoothing(cutoff_hz: float | np.ndarray, dt: float) -> float | np.ndarray:
    """Weight of the new sample in an exponential smoother with this cut-off: ``1 / (1 + 1 / (2 pi fc dt))``."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff_hz * dt))


@dataclass
class OneEuroFilter:
    """The One-Euro filter of a vector signal (each component on its own).

    ``x_hat = x_hat + a (x - x_hat)`` with ``a = 1 / (1 + 1 / (2 pi fc dt))`` and the cut-off
    ``fc = min_cutoff + beta |dx_hat|``, where ``dx_hat`` is the speed smoothed with ``d_cutoff``. The
    first sample passes unchanged. ``beta = 0`` is an exponential smoother with a constant cut-off.

    Attributes:
        min_cutoff: cut-off (Hz) of a signal at rest: lower is smoother.
        beta: how fast the cut-off rises with speed (per unit of the signal per second).
        d_cutoff: cut-off (Hz) of the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0
    _x: np.ndarray | None = field(default=None, repr=False)
    _dx: np.ndarray | None = field(default=None, repr=False)
    _t: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
            raise DepthfaceError(f"One-Euro filter: min_cutoff and d_cutoff must be > 0 and beta >= 0, got "
                                 f"{self.min_cutoff}, {self.d_cutoff}, {self.beta}")

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter sample ``x`` ``(D,)`` taken at time ``t`` (seconds, increasing); returns ``(D,)``."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or not t > self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _smoothing(self.d_cutoff, dt) * (dx - self._dx)
        a = _smoothing(self.min_cutoff + self.beta * np.abs(self._dx), dt)
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.copy()


@dataclass
class ConstantVelocityFilter:
    """An alpha-beta filter (constant-velocity model) of a vector signal.

    Predict ``x_p = x + v dt``, then with the residual ``r = z - x_p``: ``x = x_p + alpha r`` and
    ``v = v + beta r / dt``. A signal moving at constant speed is followed without lag once the filter
    has settled; white measurement noise of variance ``s^2`` leaves
    ``s^2 (2 alpha^2 + 2 beta - 3 alpha beta) / (alpha (4 - 2 alpha - beta))`` (Kalata 1984). Stable for
    ``0 < alpha <= 1`` and ``0 < beta < 4 - 2 alpha``.

    Attributes:
        alpha: position gain (1 = no smoothing).
        beta: velocity gain.
    """

    alpha: float = 0.5
    beta: float = 0.1
    _x: np.ndarray | None = field(default=None, repr=False)
    _v: np.ndarray | None = field(default=None, repr=False)
    _t: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0 < self.alpha <= 1 and 0 < self.beta < 4 - 2 * self.alpha):
            raise DepthfaceError(f"constant-velocity filter: need 0 < alpha <= 1 and 0 < beta < 4 - 2 alpha, got "
                                 f"alpha {self.alpha}, beta {self.beta}")

    def reset(self) -> None:
        self._x = self._v = self._t = None

    def predict(self, t: float) -> np.ndarray | None:
        """The state extrapolated to time ``t`` (``None`` before the first sample)."""
        if self._x is None or self._t is None:
            return None
        return self._x + self._v * max(t - self._t, 0.0)

    def __call__(self, z: np.ndarray, t: float) -> np.ndarray:
        """Filter measurement ``z`` ``(D,)`` at time ``t`` (seconds, increasing); returns ``(D,)``."""
        z = np.asarray(z, np.float64)
        if self._x is None or self._t is None or not t > self._t:
            self._x, self._v, self._t = z.copy(), np.zeros_like(z), t
            return z.copy()
        dt = t - self._t
        xp = self._x + self._v * dt
        r = z - xp
        self._x = xp + self.alpha * r
        self._v = self._v + self.beta * r / dt
        self._t = t
        return self._x.copy()


class PoseFilter:
    """A filter of head poses: one vector filter on the head centre (mm), one on the quaternion.

    The quaternion is flipped to the hemisphere of the previous filtered one (``q`` and ``-q`` are the
    same rotation) before filtering and renormalised after.

    Args:
        make: builds one vector filter (called twice).
    """

    def __init__(self, make: Callable[[], OneEuroFilter | ConstantVelocityFilter]) -> None:
        self.translation = make()
        self.rotation = make()
        self._q: np.ndarray | None = None

    def reset(self) -> None:
        self.translation.reset()
        self.rotation.reset()
        self._q = None

    def __call__(self, quaternion: np.ndarray, translation: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Filter one pose: ``(4,)`` quaternion (w first) and ``(3,)`` mm at time ``t`` -> filtered pair."""
        q = np.asarray(quaternion, np.float64)
        if self._q is not None and float(q @ self._q) < 0:
            q = -q
        qf = self.rotation(q, t)
        qf = qf / max(np.linalg.norm(qf), 1e-12)
        self._q = qf
        return qf, self.translation(translation, t)

    def predict_translation(self, t: float) -> np.ndarray | None:
        """The head centre extrapolated to time ``t`` when the translation filter can (constant velocity)."""
        return self.translation.predict(t) if isinstance(self.translation, ConstantVelocityFilter) else None
