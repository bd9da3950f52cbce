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
and left out of the MAE; the summary says how many. Splits are the paper's
(:func:`depthface.data.splits.open_real_split`).

:func:`evaluate_pose_on_real_dataset` is ``depthface eval pose --biwi/--ict3dhp``: it picks the frames, runs
:func:`evaluate_real_pose` and writes ``metrics.json``, ``frames.csv`` and ``error_vs_angle.png``.

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

from depthface.data.frames import FrameDataset
from depthface.data.splits import REAL_SPLITS, open_real_split
from depthface.errors import DepthfaceError, InputError
from depthface.evaluation.pose import pose_errors, summarize, write_pose_report
from depthface.evaluation.report import EvalReport
from depthface.evaluation.refine import refine_suffix
from depthface.inference.reconstructor import Reconstructor

__all__ = ["RealPoseEvaluation", "evaluate_real_pose", "write_real_pose_csv", "evaluate_pose_on_real_dataset"]

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
    # the pose alone, unless the pose + shape fit refines it: then it starts from the shape network's face, as in predict
    shape_net = rec.shape_net if rec.refine == "pose+shape" else None
    scorer = Reconstructor(rec.pose_net, shape_net, rec.face_model, rec.device, rec.min_face_score,
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
                res = scorer.predict_batch([f.depth], f.intrinsics, [centre], [str(f.source)],
                                              refine_steps=0 if centre is not None else None,
                                              centre_source="ground_truth" if start else "previous_frame")[0]
                previous = res.translation if res.found else None
            else:
                res = scorer.predict(f.depth, f.intrinsics, centre=f.translation if gt_crop else None,
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


def evaluate_pose_on_real_dataset(ckpt: str | Path, kind: str, root: str | Path, split: str | None = None,
                                  gt_crop: bool = False, first_frame: bool = False, limit: int | None = None,
                                  out: str | Path | None = None, run_dir: str | Path = "runs", refine: str = "none",
                                  device: str = "cpu", face_model: str | Path | None = None,
                                  progress: bool = True) -> EvalReport:
    """A pose network on a copy of Biwi or ICT-3DHP through the product's path (``depthface eval pose --biwi``).

    Args:
        ckpt: pose run directory or checkpoint file.
        kind: ``"biwi"`` or ``"ict3dhp"``.
        root: the dataset folder.
        split: a split of :data:`depthface.data.splits.REAL_SPLITS` (default the first: Biwi ``group1``).
        gt_crop, first_frame: the crop protocol (see the module docstring).
        limit: evaluate this many frames spread evenly over the split (default all).
        out: the folder to write (default ``run_dir/eval_<kind>_<split>[_gtcrop|_firstframe][_refine_...]``).
        run_dir: the run folder of ``ckpt`` (:func:`depthface.evaluation.pose.pose_checkpoint`).
        refine: the :class:`Reconstructor`'s test-time refinement (``"none"``, ``"pose"``, ``"pose+shape"``).
        device: a torch device.
        face_model: the face model of the refinement.

    Returns:
        The :class:`~depthface.evaluation.report.EvalReport`; writes ``metrics.json``, ``frames.csv`` (every
        frame with its status) and ``error_vs_angle.png``.
    """
    if split is None and kind in REAL_SPLITS:
        split = REAL_SPLITS[kind][0]
    frames, indices = open_real_split(kind, root, split)
    if limit is not None:
        if limit < 1:
            raise DepthfaceError(f"--limit must be at least 1, got {limit}")
        indices = indices[np.unique(np.linspace(0, len(indices) - 1, min(limit, len(indices))).astype(int))]
    rec = Reconstructor.from_checkpoints(ckpt, None, face_model, device, refine=refine)
    ev = evaluate_real_pose(rec, frames, indices, gt_crop=gt_crop, first_frame=first_frame, progress=progress)
    s = ev.summary()
    out = Path(out) if out is not None else Path(run_dir) / (
        f"eval_{kind}_{split}{'_gtcrop' if gt_crop else '_firstframe' if first_frame else ''}{refine_suffix(refine)}")
    write_pose_report(out, s, ev.errors())
    write_real_pose_csv(out / "frames.csv", ev)
    left_out = len(ev.status) - s["frames"]
    lines = [f"crops: {ev.crop}; {s['frames']} of {len(ev.status)} frames of {kind} {split} evaluated"
             + (f" ({ev.counts['no head']} without a head found, {ev.counts['unreadable']} unreadable: "
                f"see frames.csv)" if left_out else ""),
             f"MAE {s['mae']:.2f} deg (yaw {s['yaw']:.2f}, pitch {s['pitch']:.2f}, roll {s['roll']:.2f}); "
             f"translation {s['translation_mm']:.1f} mm (to the dataset's own head centre); "
             f"{1000 * s['seconds_per_frame']:.1f} ms/frame; wrote {out}"]
    return EvalReport(s, out, lines)
