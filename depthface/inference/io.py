"""Reading users' depth files and writing predictions.

Inputs: 16-bit PNG (mm), ``.npy`` / ``.npz`` (an array ``depth`` or the only array), Biwi ``.bin``
(intrinsics from a ``depth.cal`` beside it), and folders of those (an ICT-3DHP sequence folder's
``depthAligned/`` PNGs get the ICT-3DHP intrinsics). ``depth_scale`` converts a sensor's units to mm
(e.g. 0.1 for RealSense's 100 um units; 1000 for metres).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthface.data.biwi import read_biwi_depth
from depthface.data.frames import read_depth_png16
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics, read_biwi_calibration

SUFFIXES = (".png", ".npy", ".npz", ".bin")


@dataclass(frozen=True)
class InputFrame:
    """One input file: its path, a display name and the intrinsics its layout implies (or None)."""

    path: Path
    name: str
    intrinsics: Intrinsics | None


def read_depth_file(path: str | Path, depth_scale: float = 1.0) -> np.ndarray:
    """Read one depth frame as float32 mm ``(H, W)``; one-line InputError on anything unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        depth = read_depth_png16(path)
    elif suffix == ".bin":
        depth = read_biwi_depth(path)
    elif suffix in (".npy", ".npz"):
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise InputError(f"not a readable NumPy file ({' '.join(str(e).split())[:80]})", path) from None
        if suffix == ".npz":
            keys = list(data.keys())
            if "depth" in keys:
                depth = data["depth"]
            elif len(keys) == 1:
                depth = data[keys[0]]
            else:
                raise InputError(f"npz holds {keys}; name the depth array 'depth'", path)
        else:
            depth = data
    else:
        raise InputError(f"unsupported depth file type {suffix!r}; use one of {', '.join(SUFFIXES)}", path)
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise InputError(f"depth must be a 2-D (H, W) array, got shape {depth.shape}", path)
    if not (np.issubdtype(depth.dtype, np.integer) or np.issubdtype(depth.dtype, np.floating)):
        raise InputError(f"depth must be numeric, got dtype {depth.dtype}", path)
    return depth.astype(np.float32) * np.float32(depth_scale)


def _layout_intrinsics(path: Path) -> Intrinsics | None:
    if path.suffix.lower() == ".bin" and (path.parent / "depth.cal").exists():
        return read_biwi_calibration(path.parent / "depth.cal").intrinsics
    if path.parent.name == "depthAligned":
        return Intrinsics.preset("ict3dhp")
    return None


def collect_inputs(paths: list[str | Path]) -> list[InputFrame]:
    """Expand files and folders (recursively, sorted) into input frames."""
    frames: list[InputFrame] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES and f.is_file()
                           and not f.name.endswith("_mask.png"))
            if not files:
                raise InputError(f"folder holds no depth files ({', '.join(SUFFIXES)})", p)
            frames += [InputFrame(f, str(f.relative_to(p)), _layout_intrinsics(f)) for f in files]
        elif p.exists():
            frames.append(InputFrame(p, p.name, _layout_intrinsics(p)))
        else:
            raise InputError("no such file or folder", p)
    return frames


def safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


POSE_COLUMNS = ["frame", "found", "confidence", "yaw_deg", "pitch_deg", "roll_deg", "tx_mm", "ty_mm", "tz_mm",
                "qw", "qx", "qy", "qz", "r00", "r01", "r02", "r10", "r11", "r12", "r20", "r21", "r22", "reason"]


def write_poses(out: Path, rows: list[dict]) -> None:
    """``poses.csv`` (one row per frame, header names units) and ``poses.json`` (with the conventions)."""
    with (out / "poses.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, POSE_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in POSE_COLUMNS})
    conventions = ("millimetres; OpenCV camera frame (x right, y down, z forward); pose maps the head frame to the "
                   "camera (p_cam = R p_head + t, t = head centre); quaternion w first; yaw/pitch/roll in degrees, "
                   "R = Rx(-pitch) Ry(yaw) Rz(roll) (the Biwi convention); see docs/conventions.md")
    (out / "poses.json").write_text(json.dumps({"conventions": conventions, "frames": rows}, indent=1) + "\n")
