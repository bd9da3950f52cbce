"""Parameter records of the simulator (scene and sensor profiles): shared validation and manifest rules."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Callable

#: field metadata of parameters added after generator version 1: a manifest lists them only when they differ
#: from their default, so that the manifests (and bytes) of datasets made before they existed stay valid
ADDED: dict[str, bool] = {"added": True}


def check_params(obj: Any, bad: Callable[[str], Exception], signed: tuple[str, ...] = (),
                 free_length: tuple[str, ...] = ()) -> None:
    """Validate a frozen dataclass of numbers and number tuples: finite values, ``(low, high)`` ranges with
    ``low <= high`` (except the fields in ``free_length``), no negatives (except fields starting with a
    prefix in ``signed``). ``bad(message)`` makes the exception to raise. Strings and ``None`` are skipped."""
    for f in fields(obj):
        v = getattr(obj, f.name)
        if v is None or isinstance(v, str):
            continue
        values = v if isinstance(v, tuple) else (v,)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values):
            raise bad(f"{f.name} must be finite numbers, got {v}")
        if isinstance(v, tuple) and f.name not in free_length and (len(v) != 2 or v[0] > v[1]):
            raise bad(f"{f.name} must be a (low, high) range, got {v}")
        if not (signed and f.name.startswith(signed)) and any(x < 0 for x in values):
            raise bad(f"{f.name} must be >= 0, got {v}")


def manifest_fields(obj: Any) -> dict[str, Any]:
    """The fields of a parameter record as a manifest lists them (see :data:`ADDED`)."""
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if f.metadata.get("added") and v == f.default:
            continue
        out[f.name] = v
    return out
