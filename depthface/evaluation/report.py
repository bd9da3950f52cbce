"""Dataset pictures and the demo's HTML report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depthface.evaluation.plots import save_contact_sheet
from depthface.synth.storage import ChunkedArrays


def dataset_contact_sheet(root: str | Path, out: str | Path, n: int = 16, split: str | None = None, seed: int = 0,
                          title: str | None = None) -> Path:
    """Contact sheet of ``n`` random crops of a stored dataset, landmarks projected with the crop camera."""
    arrays = ChunkedArrays(root)
    idx = arrays.indices(split)
    pick = np.sort(np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False))
    crops, titles, lms = [], [], []
    for i in pick:
        crops.append(arrays.get(int(i), "depth"))
        fx, fy, cx, cy = arrays.get(int(i), "crop_intrinsics")
        lm = arrays.get(int(i), "landmarks3d").astype(np.float64)
        lms.append(np.stack((fx * lm[:, 0] / lm[:, 2] + cx, fy * lm[:, 1] / lm[:, 2] + cy), -1))
        y, p, r = arrays.get(int(i), "ypr")
        titles.append(f"#{i} y{y:+.0f} p{p:+.0f} r{r:+.0f}")
    m = arrays.manifest
    sensor = m["sensor"]["name"] if m.get("sensor") else "clean"
    return save_contact_sheet(out, crops, titles, landmarks_2d=lms,
                              suptitle=title or f"{m['profile']} ({sensor}), {m['n_frames']} frames")
