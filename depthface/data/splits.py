"""Train/test splits of the real datasets: pure functions of frame metadata returning index lists.

Every function returns a :class:`Split` ``(train, test)`` of sorted, disjoint frame indices that
together cover ``range(n)``; the random ones are deterministic for a given seed (numpy PCG64).

* **Biwi Group-1** (:func:`biwi_group1_split`): test = every frame of subjects 11 and 12, train =
  the rest, split **by subject** with :data:`depthface.data.biwi.BIWI_SEQUENCE_TO_SUBJECT`.
  Subjects 11 and 12 are M05 and M06 (``BIWI_SUBJECTS[10:12]``, women F01-F06 numbered first),
  who are also the people of sequences 11 and 12 and were recorded only once, so "sequences 11
  and 12" and "subjects 11 and 12" select the same frames.
* **Biwi Group-2** (:func:`biwi_group2_split`): a seeded random 30 % of all frames for test.
* **ICT-3DHP** (:func:`ict3dhp_split`): every frame is test data.
* **FaceWarehouse** (:func:`facewarehouse_split`): 30 random samples (fixed seed) for test.

Use with a reader: ``biwi_group1_split(BiwiDataset(root).subjects)``; :func:`open_real_split` opens a Biwi or
ICT-3DHP copy and picks one part of a split by name (what evaluation and ``data import`` use).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from depthface.data.biwi import BIWI_SEQUENCE_TO_SUBJECT, BiwiDataset
from depthface.data.frames import FrameDataset
from depthface.data.ict3dhp import ICT3DHPDataset
from depthface.errors import DepthfaceError, InputError

__all__ = [
    "Split", "BIWI_GROUP1_TEST_SUBJECTS", "DEFAULT_SEED", "biwi_group1_split", "biwi_group2_split",
    "ict3dhp_split", "facewarehouse_split", "random_split", "subject_split", "REAL_SPLITS", "open_real_split",
]

#: Biwi Group-1 test subjects: "subjects 11 and 12" = the people of sequences 11 and 12.
BIWI_GROUP1_TEST_SUBJECTS: tuple[str, ...] = (BIWI_SEQUENCE_TO_SUBJECT["11"], BIWI_SEQUENCE_TO_SUBJECT["12"])

#: Seed of the random splits (Biwi Group-2, FaceWarehouse).
DEFAULT_SEED: int = 0


class Split(NamedTuple):
    """Sorted, disjoint frame indices: ``train`` and ``test``."""

    train: list[int]
    test: list[int]


def _check_n(n: int) -> int:
    if int(n) != n or n < 0:
        raise InputError(f"number of frames must be a non-negative integer, got {n}")
    return int(n)


def subject_split(subjects: Sequence[str], test_subjects: Sequence[str]) -> Split:
    """Split frames by subject: test = frames whose subject is in ``test_subjects``.

    Args:
        subjects: subject id of every frame (e.g. ``BiwiDataset.subjects``).
        test_subjects: the held-out subjects.

    Returns:
        ``Split(train, test)``.
    """
    held_out = set(test_subjects)
    test = [i for i, s in enumerate(subjects) if s in held_out]
    train = [i for i, s in enumerate(subjects) if s not in held_out]
    return Split(train, test)


def random_split(n: int, n_test: int, seed: int = DEFAULT_SEED) -> Split:
    """``n_test`` frames drawn uniformly without replacement (seeded) for test, the rest for train."""
    n = _check_n(n)
    if not 0 <= n_test <= n:
        raise InputError(f"cannot draw {n_test} test items from {n}")
    perm = np.random.default_rng(seed).permutation(n)
    test = sorted(int(i) for i in perm[:n_test])
    held = set(test)
    return Split([i for i in range(n) if i not in held], test)


def biwi_group1_split(subjects: Sequence[str], test_subjects: Sequence[str] = BIWI_GROUP1_TEST_SUBJECTS) -> Split:
    """Biwi Group-1: subjects 11 and 12 (M05, M06) for test, every other subject for train.

    Args:
        subjects: subject id of every frame (``BiwiDataset.subjects``).
    """
    return subject_split(subjects, test_subjects)


def biwi_group2_split(n: int, test_fraction: float = 0.3, seed: int = DEFAULT_SEED) -> Split:
    """Biwi Group-2: a seeded random ``test_fraction`` (30 %) of the ``n`` frames for test."""
    n = _check_n(n)
    if not 0.0 <= test_fraction <= 1.0:
        raise InputError(f"test_fraction must lie in [0, 1], got {test_fraction}")
    return random_split(n, int(round(test_fraction * n)), seed)


def ict3dhp_split(n: int) -> Split:
    """ICT-3DHP: evaluation only, every frame is test."""
    return Split([], list(range(_check_n(n))))


def facewarehouse_split(n: int, n_test: int = 30, seed: int = DEFAULT_SEED) -> Split:
    """FaceWarehouse: ``n_test`` (30) samples drawn with a fixed seed for test, the rest for train."""
    return random_split(n, n_test, seed)


#: the splits each real dataset offers for evaluation (the test part of the paper's protocol)
REAL_SPLITS: dict[str, tuple[str, ...]] = {"biwi": ("group1", "group2", "all"), "ict3dhp": ("all",)}


def open_real_split(kind: str, root: str | Path, split: str, part: str = "test") -> tuple[FrameDataset, np.ndarray]:
    """Open a real dataset and pick the frames of one part of a split.

    Args:
        kind: ``"biwi"`` or ``"ict3dhp"``.
        root: the dataset folder (Biwi: holding ``hpdb/``; ICT-3DHP: one folder per sequence).
        split: Biwi ``group1`` (test = subjects 11 and 12), ``group2`` (a seeded random 30 % of the frames)
            or ``all``; ICT-3DHP ``all`` (the whole set is test data).
        part: ``"test"`` or ``"train"`` (for ``all``, both are every frame: self-supervised adaptation
            on unlabelled test frames is transductive, say so beside such numbers).

    Returns:
        ``(frames, indices)``: the reader and the sorted indices of the frames.
    """
    if part not in ("train", "test"):
        raise DepthfaceError(f"part must be train or test, got {part!r}")
    if kind not in REAL_SPLITS:
        raise DepthfaceError(f"unknown real dataset {kind!r}; use biwi or ict3dhp")
    if split not in REAL_SPLITS[kind]:
        raise DepthfaceError(f"--split {split!r} is not a {kind} split; use one of {', '.join(REAL_SPLITS[kind])}")
    frames: FrameDataset = BiwiDataset(root) if kind == "biwi" else ICT3DHPDataset(root)
    n = len(frames)
    if split == "group1":
        chosen = getattr(biwi_group1_split(frames.subjects), part)
    elif split == "group2":
        chosen = getattr(biwi_group2_split(n), part)
    elif kind == "ict3dhp" and part == "test":
        chosen = ict3dhp_split(n).test
    else:
        chosen = np.arange(n)
    indices = np.sort(np.asarray(chosen, dtype=np.int64))
    if len(indices) == 0:
        raise InputError(f"the {split} split has no {part} frames here ({n} frames read)", root)
    return frames, indices
