"""The paper's FaceWarehouse shape protocol (supplement section 2.1, Fig. 4 and 5).

Per sample: the ground-truth mesh (another topology than the face model) and the reconstruction are
rigidly aligned on **nine landmarks** (Umeyama, no scale unless ``align="similarity"``), both are cut to
the **facial region**, and eq. 8 (thresholded two-sided Chamfer, flying vertices counted) is computed
between the reconstruction's narrow face and the ground truth's cropped face.

* **Nine ground-truth landmarks**: the paper annotated them by hand on FaceWarehouse's topology (Fig. 4),
  and FaceWarehouse publishes only 2-D image landmarks, so the nine vertex indices come from a file
  (``landmarks9.txt`` in the dataset root by default, or ``landmarks=``): nine 0-based vertex indices of
  the FaceWarehouse mesh, one per line, in the order of
  :data:`depthface.facemodel.RIGID_LANDMARK_IDS` (iBUG 0, 36, 39, 42, 45, 16, 28, 31, 35: right jaw end,
  the four eye corners, left jaw end, nose bridge, the two nostril corners). FaceWarehouse meshes share
  one topology, so one file serves every sample.
* **Cropped facial region** of the ground truth: the model's mean face is aligned to the ground truth on
  the nine landmarks, and the ground-truth vertices whose nearest mean-face vertex (whole head) lies in the
  model's narrow face are kept: the model's crop transferred to the other topology, the same for every
  method.
* **Input depth**: ``Tester_k/TrainingPose/pose_M_depth.png`` (16-bit mm) or ``.npy`` when the copy has it
  (Kinect v1 intrinsics, the head found by the localiser). FaceWarehouse's raw depth is not part of its
  published layout; without a depth file the ground-truth mesh is rendered frontally, its head centre
  (the eye-corner landmarks' centroid 90 mm into the skull, docs/conventions.md) at ``distance_mm`` in
  front of a Kinect v1 camera, clean or through the Kinect simulator (``sensor``), and the crop is centred
  there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree
from tqdm import tqdm

from depthface.data.facewarehouse import FaceWarehouseDataset
from depthface.data.splits import facewarehouse_split
from depthface.errors import DepthfaceError, InputError
from depthface.evaluation.shape import FLYING_EPS_MM
from depthface.evaluation.refine import refine_suffix
from depthface.evaluation.report import EvalReport
from depthface.evaluation.shape_eval import ShapeEvaluation, shape_run_dir, write_shape_report
from depthface.facemodel import MorphableModel
from depthface.geometry.alignment import umeyama
from depthface.geometry.camera import Intrinsics
from depthface.geometry.chamfer import fitting_error
from depthface.geometry.conventions import HEAD_CENTRE_BEHIND_EYES_MM

__all__ = ["read_landmarks9", "gt_face_region", "render_facewarehouse_frame", "facewarehouse_errors",
           "evaluate_facewarehouse", "evaluate_shape_on_facewarehouse"]

#: Predicts the face of one frame: ``(depth (H, W) mm, intrinsics, crop centre (3,) or None) -> (V, 3)``
#: head-frame vertices, or ``None`` when no face is found (e.g. ``Reconstructor.predict``'s ``vertices_head``).
Predictor = Callable[[np.ndarray, Intrinsics, "np.ndarray | None"], "np.ndarray | None"]

_EYE_CORNERS_IN_9 = [1, 2, 3, 4]  # positions of iBUG 36, 39, 42, 45 in RIGID_LANDMARK_IDS


def read_landmarks9(path: str | Path, n_vertices: int) -> np.ndarray:
    """Nine 0-based vertex indices (text, one or more per line, or ``.npy``) -> ``(9,)`` int64."""
    path = Path(path)
    if not path.is_file():
        raise InputError("nine-landmark file not found: give the nine FaceWarehouse vertex indices (iBUG 0, 36, 39, "
                         "42, 45, 16, 28, 31, 35), one per line (see docs/datasets.md)", path)
    try:
        idx = np.load(path) if path.suffix == ".npy" else np.array(path.read_text().split(), dtype=float)
    except (ValueError, OSError) as e:
        raise InputError(f"cannot read the nine landmark indices: {e}", path) from None
    idx = np.asarray(idx).reshape(-1)
    if idx.shape != (9,) or not np.all(np.mod(idx, 1) == 0) or idx.min() < 0 or idx.max() >= n_vertices:
        raise InputError(f"need nine vertex indices in [0, {n_vertices}), got {idx.tolist()}", path)
    return idx.astype(np.int64)


def _align(src_lm: np.ndarray, dst_lm: np.ndarray, similarity: bool):
    R, t, s = umeyama(torch.from_numpy(src_lm)[None], torch.from_numpy(dst_lm)[None], scale=similarity)
    R, t, s = R[0].numpy(), t[0].numpy(), float(s[0])
    return lambda p: s * (np.asarray(p, np.float64) @ R.T) + t


def gt_face_region(gt_vertices: np.ndarray, gt_lm9: np.ndarray, model: MorphableModel,
                   similarity: bool = False) -> np.ndarray:
    """Indices of the ground-truth vertices inside the model's narrow face (see the module docstring).

    Args:
        gt_vertices: ``(N, 3)`` ground truth in head-frame axes (mm). gt_lm9: ``(9,)`` its landmark vertices.
    """
    mean = model.mean.detach().cpu().double().numpy()
    to_gt = _align(mean[model.rigid_landmarks9.cpu().numpy()], gt_vertices[gt_lm9], similarity)
    _, nearest = cKDTree(to_gt(mean)).query(gt_vertices)
    return np.flatnonzero(np.isin(nearest, model.narrow_face.cpu().numpy()))


def facewarehouse_errors(pred_vertices: np.ndarray, gt_vertices: np.ndarray, gt_lm9: np.ndarray, gt_region: np.ndarray,
                         model: MorphableModel, similarity: bool = False, eps_mm: float = FLYING_EPS_MM) -> dict:
    """eq. 8 of a reconstruction ``(V, 3)`` (model topology, head frame) against a ground truth ``(N, 3)``:
    nine-landmark alignment, the reconstruction's narrow face against the ground truth's region."""
    to_gt = _align(pred_vertices[model.rigid_landmarks9.cpu().numpy()].astype(np.float64), gt_vertices[gt_lm9],
                   similarity)
    pred = to_gt(pred_vertices[model.narrow_face.cpu().numpy()])
    fe = fitting_error(pred, gt_vertices[gt_region], eps_mm)
    return {"mean_squared_mm2": fe.mean_squared_mm2, "mean_distance_mm": fe.mean_distance_mm,
            "rms_mm": float("nan"), "n_valid": fe.n_valid, "n_flying_pred": fe.n_flying_pred,
            "n_flying_gt": fe.n_flying_gt}


def render_facewarehouse_frame(gt_vertices: np.ndarray, faces: np.ndarray, gt_lm9: np.ndarray, intrinsics: Intrinsics,
                               distance_mm: float = 800.0, sensor=None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A depth frame of a ground-truth mesh seen frontally (the input when a copy has no depth files).

    The mesh (head-frame axes, mm) is moved so that its head centre (eye corners + 90 mm into the skull)
    sits on the optical axis at ``distance_mm``; rendered clean, or through ``sensor`` (e.g. the Kinect v1
    simulator's :class:`~depthface.synth.sensor.SensorProfile`, seeded by ``seed``).

    Returns:
        ``(depth (H, W) float32 mm, head centre (3,) in the camera frame)``.
    """
    from depthface.synth.render import render_depth
    from depthface.synth.sensor import simulate_kinect

    centre = gt_vertices[gt_lm9[_EYE_CORNERS_IN_9]].mean(0) + np.array([0.0, 0.0, HEAD_CENTRE_BEHIND_EYES_MM])
    t = np.array([0.0, 0.0, distance_mm])
    cam = gt_vertices - centre + t
    depth = render_depth(cam, faces.astype(np.int32), intrinsics)
    if sensor is not None:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        depth = simulate_kinect(depth, np.eye(3), t, intrinsics, rng, sensor).astype(np.float32)
    return depth.astype(np.float32), t


def evaluate_facewarehouse(root: str | Path, model: MorphableModel, predict: Predictor | None,
                           landmarks: str | Path | None = None, split: str = "test", limit: int | None = None,
                           mm_per_unit: float | None = None, similarity: bool = False, sensor=None,
                           distance_mm: float = 800.0, progress: bool = True) -> ShapeEvaluation:
    """The FaceWarehouse protocol over a copy in the published layout (see the module docstring).

    Args:
        root: folder holding ``Tester_k/TrainingPose/pose_M.obj``.
        model: the face model.
        predict: the method under test (:data:`Predictor`), or ``None`` to score the mean face only.
        landmarks: the nine-landmark vertex file (default ``root/landmarks9.txt``).
        split: ``"test"`` (the paper's 30 random samples, :func:`depthface.data.splits.facewarehouse_split`)
            or ``"all"``.
        limit: score this many of them, spread evenly.
        mm_per_unit: the OBJ unit (default the reader's estimate, 100 mm).
        similarity: estimate a scale in the nine-landmark alignment (for copies of unknown units).
        sensor: render missing depth through this sensor (``None``: clean).

    Returns:
        A :class:`ShapeEvaluation` with methods ``"mean face"`` and ``"network"`` (the predictor); errors have
        eq. 8 but no per-vertex RMS (no correspondence). Samples without a face found are skipped and counted
        in ``seconds_per_frame["no face"]``.
    """
    from depthface.evaluation.shape_eval import pick_samples

    kw = {} if mm_per_unit is None else {"mm_per_unit": mm_per_unit}
    ds = FaceWarehouseDataset(root, **kw)
    if split not in ("test", "all"):
        raise InputError(f"--split for FaceWarehouse must be test (the paper's 30 samples) or all, got {split!r}")
    chosen = np.sort(facewarehouse_split(len(ds), n_test=min(30, len(ds))).test) if split == "test" else np.arange(len(ds))
    chosen = chosen[pick_samples(len(chosen), limit)]
    first = ds[int(chosen[0])]
    lm_path = Path(landmarks) if landmarks is not None else Path(root) / "landmarks9.txt"
    lm9 = read_landmarks9(lm_path, len(first.vertices))
    names = ["mean face"] + (["network"] if predict is not None else [])
    mean = model.mean.detach().cpu().numpy()
    ev = ShapeEvaluation(np.asarray(chosen, np.int64), np.asarray(chosen, np.int64), {n: [] for n in names},
                         {n: 0.0 for n in names}, names[-1], {})
    kinect = Intrinsics.preset("kinect_v1")
    kept, missing = [], 0
    for i in tqdm(chosen, desc="eval shape (FaceWarehouse)", disable=not progress, leave=False):
        s = ds[int(i)]
        gt = s.vertices_head_axes().astype(np.float64)
        region = gt_face_region(gt, lm9, model, similarity)
        faces = {"mean face": mean}
        if predict is not None:
            if s.depth is not None:
                depth, k, centre = s.depth, s.intrinsics, None
            else:
                depth, centre = render_facewarehouse_frame(gt, s.faces, lm9, kinect, distance_mm, sensor, int(i))
                k = kinect
            t0 = time.perf_counter()
            v = predict(depth, k, centre)
            ev.seconds_per_frame["network"] += time.perf_counter() - t0
            if v is None:
                missing += 1
                continue
            faces["network"] = np.asarray(v)
        kept.append(int(i))
        for name in names:
            ev.errors[name].append(facewarehouse_errors(faces[name], gt, lm9, region, model, similarity))
    if not kept:
        raise InputError("no FaceWarehouse sample had a face found", root)
    ev.index = np.asarray(kept, np.int64)
    ev.ds_positions = ev.index
    for name in names:
        ev.seconds_per_frame[name] /= max(len(chosen), 1)
    ev.seconds_per_frame["no face"] = float(missing)
    return ev


def evaluate_shape_on_facewarehouse(ckpt: str | Path, pose: str | Path, root: str | Path, split: str = "test",
                                    limit: int | None = None, refine: str = "none", out: str | Path | None = None,
                                    landmarks: str | Path | None = None, mm_per_unit: float | None = None,
                                    similarity: bool = False, sensor: str | None = None, device: str = "cpu",
                                    face_model: str | Path | None = None) -> EvalReport:
    """The product path (:class:`~depthface.inference.Reconstructor`) under the FaceWarehouse protocol
    (``depthface eval shape --facewarehouse``): :func:`evaluate_facewarehouse`, then the shape report.

    Args:
        ckpt: shape run directory or checkpoint; pose: the pose run (both required).
        root, split, limit, landmarks, mm_per_unit, similarity: as :func:`evaluate_facewarehouse`.
        refine: the reconstructor's test-time refinement.
        out: the folder to write (default ``<shape run>/eval_shape_facewarehouse_<split>[_refine_...]``).
        sensor: a sensor preset (:meth:`depthface.synth.sensor.SimulationProfile.preset`) to render copies
            without depth files through (default clean).
        device: a torch device.
        face_model: the face model the networks were trained with.

    Returns:
        The :class:`~depthface.evaluation.report.EvalReport` of
        :func:`~depthface.evaluation.shape_eval.write_shape_report`.
    """
    from depthface.facemodel import load_face_model
    from depthface.inference import Reconstructor
    from depthface.synth.sensor import SensorProfile

    model = load_face_model(face_model)
    if ckpt is None or pose is None:
        raise DepthfaceError("--facewarehouse runs the product path: give --ckpt (shape) and --pose")
    rec = Reconstructor.from_checkpoints(pose, ckpt, face_model, device, refine=refine)

    def predict_face(depth: np.ndarray, k: Intrinsics, centre: np.ndarray | None) -> np.ndarray | None:
        res = rec.predict(depth, k, centre=centre)
        return res.vertices_head if res.rotation is not None else None

    ev = evaluate_facewarehouse(root, model, predict_face, landmarks, split, limit, mm_per_unit, similarity,
                                SensorProfile.preset(sensor) if sensor else None)
    out = Path(out) if out is not None else (
        shape_run_dir(ckpt) / f"eval_shape_facewarehouse_{split}{refine_suffix(refine)}")
    s = write_shape_report(out, ev, model, extra={"protocol": "FaceWarehouse", "refine": refine,
                                                  "alignment": "similarity" if similarity else "rigid",
                                                  "frames_without_face": ev.seconds_per_frame["no face"]})
    lines = [f"{len(ev.index)} FaceWarehouse samples: eq. 8 {s['eq8_mean_mm2']:.3f} mm² (var {s['eq8_var']:.4f}), "
             f"mean distance {s['mean_distance_mm']:.2f} mm; mean face "
             f"{s['methods']['mean face']['eq8_mean_mm2']:.3f} mm²; wrote {out}"]
    return EvalReport(s, out, lines)
