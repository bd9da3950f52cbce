"""Torch datasets over stored synthetic datasets: position images computed on the fly from the crops.

``SourceDataset`` yields labels (source domain, supervised training and evaluation);
``TargetDataset`` yields only what a real sensor gives (the crop and its camera), never labels,
so a training loop cannot use target labels by mistake. Evaluation of a target set uses
``SourceDataset`` on the same directory, explicitly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from depthface.geometry.camera import position_image
from depthface.synth.scenes import INPUT_FIELDS
from depthface.synth.storage import ChunkedArrays

LABEL_FIELDS = ("identity_id", "expression_id", "identity", "expression", "quaternion", "translation", "ypr",
                "centre_2d", "landmarks3d")


def crop_to_position(depth: np.ndarray, crop_intrinsics: np.ndarray) -> torch.Tensor:
    """``(160, 160)`` uint16 crop + ``(4,)`` crop intrinsics -> ``(3, 160, 160)`` float32 position image (mm)."""
    d = torch.from_numpy(depth.astype(np.float32))[None, None]
    return position_image(d, torch.from_numpy(np.asarray(crop_intrinsics, np.float32)))[0]


class _StoredDataset(Dataset):
    fields: tuple[str, ...] = ()

    def __init__(self, root: str | Path, split: str | None = "train", repeat: int = 1, limit: int = 0) -> None:
        self.arrays = ChunkedArrays(root)
        self.fields = tuple(f for f in type(self).fields if f in self.arrays.fields)  # real imports: pose labels only
        self.root = Path(root)
        self.split = split
        indices = self.arrays.indices(split)
        self.index = np.tile(indices[:limit] if limit > 0 else indices, max(1, int(repeat)))

    @property
    def manifest(self) -> dict:
        return self.arrays.manifest

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        idx = int(self.index[i])
        k = self.arrays.get(idx, "crop_intrinsics")
        item = {"position": crop_to_position(self.arrays.get(idx, "depth"), k), "index": torch.tensor(idx)}
        for name in (*INPUT_FIELDS, *self.fields):
            item[name] = torch.from_numpy(np.array(self.arrays.get(idx, name)))
        return item


class SourceDataset(_StoredDataset):
    """Labelled samples: ``position (3, 160, 160)``, inputs (crop centre/window/intrinsics) and labels.

    Args:
        root: dataset directory.
        split: ``train`` / ``val`` / ``test`` (by identity) or ``None`` for all samples.
        repeat: list every sample this many times (the paper reuses real frames 3x per epoch).
        limit: keep only the split's first ``limit`` samples (0: all), before repeating.
    """

    fields = LABEL_FIELDS


class TargetDataset(_StoredDataset):
    """Unlabelled samples for domain adaptation: ``position``, ``crop_centre``, ``crop_window``,
    ``crop_intrinsics`` and ``index`` only. Labels stay on disk for evaluation (use SourceDataset).
    Arguments as :class:`SourceDataset`'s."""

    fields = ()
