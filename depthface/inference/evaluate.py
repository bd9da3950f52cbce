"""Pose evaluation on real datasets (Biwi, ICT-3DHP) through the product's own per-frame path.

Every frame goes through :meth:`Reconstructor.predict` exactly as ``depthface predict`` runs it:

* default: the automatic head localiser finds the crop centre, DAPoseNet runs, the crop is refined
  around the predicted head centre once and DAPoseNet runs again (what a user gets);
* ``gt_crop=True``: the crop is centred on the ground-truth head position and not refined (the
  protocol of POSEidon and other methods that assume a known head position; say so beside the numbers);
* ``first_frame=True``: ICT-3DHP's tracking protocol: the first evaluated frame of each sequence is
  cropped around its ground-truth head, every later frame around the previous frame's predicted head
  (one pose pass, no refinement); after a frame without a face the head is localised again.

Frames are independent, so results do not depend on any batch size. A frame whose head the localiser
does not find, or whose file cannot be read, is counted and listed (status column of the per-frame CSV)
and left out of the MAE; the summary says how many. Splits are the paper's (:mod:`depthface.data.splits`).

Translations: Biwi's and ICT-3DHP's head centres are their own tracker's points, not depthface's head
centre (docs/conventions.md), so the translation error on real data includes a fixed per-subject offset.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from depthface.data.biwi import BiwiDataset
from depthface.data.frames import FrameDataset
from depthface.data.ict3dhp import ICT3DHPDataset
from depthface.data.splits import biwi_group1_split, biwi_group2_split, ict3dhp_split
from depthface.errors import DepthfaceError, InputError
from depthface.evaluation.pose import pose_errors, summarize
from depthface.inference.reconstructor import Reconstructor

__all__ = ["REAL_SPLITS", "RealPoseEvaluation", "open_real_split", "evaluate_real_pose", "write_real_pose_csv"]

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


@dataclass
class RealPoseEvaluation:
    """Per-frame results of :func:`evaluate_real_pose` (arrays over the evaluated frames, in order).

    ``status`` is ``"ok"``, ``"low face score"`` (counted in the MAE: the verdict does not change the
    pose), ``"no head"`` or ``"unreadable: <reason>"`` (both left out of the MAE). ``confidence`` is the
    calibrated probability that the pose is within 10 deg, ``flagged`` its threshold's verdict
    (:mod:`depthface.inference.confidence`), ``face_score`` the score behind the status.
    """

    keys: list[tuple[str, str, int]]
    status: list[str]
    confidence: np.ndarray
    R_pred: np.ndarray
    t_pred: np.ndarray
    R_true: np.ndarray
    t_true: np.ndarray
    seconds_per_frame: float
    crop: str
    counts: dict[str, int] = field(default_factory=dict)
    face_score: np.ndarray | None = None
    flagged: np.ndarray | None = None

    @property
    def scored(self) -> np.ndarray:
        """``(N,)`` bool: frames with a prediction (status ``ok`` or ``low face score``)."""
        return np.array([s in ("ok", "low face score") for s in self.status], dtype=bool)

    def errors(self) -> dict[str, np.ndarray]:
        """:func:`depthface.evaluation.pose.pose_errors` of the scored frames."""
        m = self.scored
        if not m.any():
            raise DepthfaceError("no frame could be evaluated (see the status column)")
        return pose_errors(self.R_pred[m], self.t_pred[m], self.R_true[m], self.t_true[m])

    def summary(self) -> dict:
        s = summarize(self.errors())
        s.update({"crop": self.crop, "seconds_per_frame": self.seconds_per_frame, "evaluated": len(self.status),
                  **{f"frames_{k.replace(' ', '_')}": v for k, v in self.counts.items()}})
        return s


def evaluate_real_pose(rec: Reconstructor, frames: FrameDataset, indices: np.ndarray, gt_crop: bool = False,
                       progress: bool = True, first_frame: bool = False) -> RealPoseEvaluation:
    """Run the pose network of ``rec`` on ``frames[indices]`` (see the module docstring).

    Args:
        rec: a :class:`Reconstructor` (its shape network is not used); ``gt_crop`` runs it without refinement.
        frames: a real-dataset reader whose frames carry ground-truth poses.
        indices: ``(N,)`` frame indices to evaluate.
        gt_crop: centre the crop on the ground-truth head position instead of localising the head.
        first_frame: the first-frame (tracking) protocol: see the module docstring.
    """
    if gt_crop and first_frame:
        raise DepthfaceError("choose one crop protocol: ground truth on every frame or on the first frame only")
    n = len(indices)
    R_pred, R_true = np.tile(np.eye(3), (n, 1, 1)), np.tile(np.eye(3), (n, 1, 1))
    t_pred, t_true = np.zeros((n, 3)), np.zeros((n, 3))
    conf, face_score, flagged = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    keys: list[tuple[str, str, int]] = []
    status: list[str] = []
    pose_only = Reconstructor(rec.pose_net, None, rec.face_model, rec.device, rec.min_face_score,
                              refine_steps=0 if gt_crop else rec.refine_steps, face_check=False, refine=rec.refine,
                              confidence=rec.confidence)
    t0 = time.perf_counter()
    timed = 0
    sequence, previous = None, None  # first-frame protocol: the current sequence and its last head
    for j, i in enumerate(tqdm(indices, desc="eval pose", disable=not progress, leave=False)):
        key = frames.keys[int(i)] if hasattr(frames, "keys") else None
        try:
            f = frames[int(i)]
        except InputError as e:
            keys.append((key.subject, key.sequence, key.frame_index) if key else ("", "", int(i)))
            status.append(f"unreadable: {e}")
            continue
        keys.append((f.subject, f.sequence, f.frame_index))
        if not f.has_pose:
            status.append("unreadable: no ground-truth pose")
            continue
        R_true[j], t_true[j] = f.rotation, f.translation
        try:
            if first_frame:
                start = (f.subject, f.sequence) != sequence
                sequence, centre = (f.subject, f.sequence), f.translation if start else previous
                res = pose_only.predict_batch([f.depth], f.intrinsics, [centre], [str(f.source)],
                                              refine_steps=0 if centre is not None else None,
                                              centre_source="ground_truth" if start else "previous_frame")[0]
                previous = res.translation if res.found else None
            else:
                res = pose_only.predict(f.depth, f.intrinsics, centre=f.translation if gt_crop else None,
                                        source=str(f.source))
        except InputError as e:
            status.append(f"unreadable: {e}")
            continue
        timed += 1
        if res.rotation is None:
            status.append("no head")
            continue
        R_pred[j], t_pred[j], conf[j] = res.rotation, res.translation, res.confidence
        face_score[j], flagged[j] = res.face_score, res.flagged
        status.append("ok" if res.found else "low face score")
    seconds = (time.perf_counter() - t0) / max(timed, 1)
    counts = {s: sum(1 for x in status if (x.startswith("unreadable") if s == "unreadable" else x == s))
              for s in ("ok", "low face score", "no head", "unreadable")}
    crop = ("ground truth (no refinement)" if gt_crop else
            "ground truth on each sequence's first frame, then the previous prediction (tracking)" if first_frame else
            "automatic head localisation + 1 refinement")
    return RealPoseEvaluation(keys, status, conf, R_pred, t_pred, R_true, t_true, seconds, crop, counts,
                              face_score, flagged)


def write_real_pose_csv(path: str | Path, ev: RealPoseEvaluation) -> Path:
    """Per-frame CSV: subject, sequence, frame, status, face score, confidence, flag, true/predicted angles and errors
    (error columns empty for frames left out of the MAE)."""
    m = ev.scored
    errs = ev.errors() if m.any() else {}
    cols = list(errs)
    rows_of_scored = np.cumsum(m) - 1
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "sequence", "frame", "status", "face_score", "confidence", "flagged", *cols])
        for j, (subject, sequence, frame) in enumerate(ev.keys):
            vals = [f"{float(errs[c][rows_of_scored[j]]):.4f}" for c in cols] if m[j] else [""] * len(cols)
            fs = f"{ev.face_score[j]:.3f}" if ev.face_score is not None else ""
            fl = int(ev.flagged[j]) if ev.flagged is not None else ""
            w.writerow([subject, sequence, frame, ev.status[j], fs, f"{ev.confidence[j]:.3f}", fl, *vals])
    return Path(path)
