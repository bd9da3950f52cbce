"""``Reconstructor``: head pose and face shape of single depth frames.

Per frame: validate the depth, find the head automatically (or take a given centre), crop, run
DAPoseNet, **refine** the crop around the predicted head centre and run DAPoseNet again, then run
DASHapeNet on the refined crop and place the face with the predicted pose.

Two scores per frame. The **face score** in [0, 1] is the share of the 68 posed landmarks that lie
within 15 mm of a measured point (eq. 7's matching with a tight threshold), times the localiser's
score. The **confidence** is a calibrated probability that the pose is within 10 deg of the truth
(:mod:`depthface.inference.confidence`; the release calibration unless another is given); ``flagged``
marks a frame below the calibration's threshold (its pose is likely off by more than 10 deg: use it
with care). A frame gets the verdict "no face" when its head is not found, its face score is below
``min_face_score``, or (``face_check=True``, the default; not in the paper) the geometric face check
of :mod:`depthface.inference.verdict` finds no face's relief there (spheres, ellipsoids, blobs). A "no face" result still holds what the networks answered (for
diagnostics and evaluation: check ``found`` before using a pose); ``predict``'s CSV/JSON rows carry
no pose for it.

Arguments are validated at the boundary: the depth must be a 2-D numeric array (or tensor) in mm, the
intrinsics an :class:`Intrinsics` whose principal point lies inside the frame; anything else raises
:class:`InputError` naming the argument.

Example::

    import numpy as np
    from depthface import Reconstructor
    from depthface.geometry import Intrinsics

    rec = Reconstructor.from_checkpoints("runs/demo/pose", "runs/demo/shape")
    depth = np.load("frame.npy")                      # (480, 640) millimetres, 0 = no measurement
    result = rec.predict(depth, Intrinsics.preset("kinect_v1"))
    if result.found:
        print(result.ypr, result.translation)        # degrees (yaw, pitch, roll), mm
        rec.face_model.export_mesh(result.vertices_camera, "face.ply")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numba import njit

from depthface.data.localize import HeadNotFoundError
from depthface.data.preprocess import Preprocessed, preprocess
from depthface.errors import DepthfaceError, InputError
from depthface.facemodel import MorphableModel, load_face_model
from depthface.facemodel.fit import REFINE_MODES, prepare_fit_region, refine_prediction
from depthface.geometry.camera import Intrinsics, depth_to_points
from depthface.geometry.rotations import (geodesic_angle_deg, matrix_to_euler, matrix_to_quaternion,
                                         quaternion_to_matrix)
from depthface.inference.confidence import ConfidenceCalibration, pose_features, release_calibration
from depthface.inference.verdict import FaceTemplate, face_verdict
from depthface.models.normalize import normalize_position

#: a posed landmark "matches" the frame when a measured point is this close (mm)
CONFIDENCE_MATCH_MM = 15.0
#: without a confidence calibration, how far the fit may turn the head from the networks' answer (deg)
FIT_TURN_BOUND_DEG = 10.0
#: a frame whose measured values all lie below this is taken for metres (mm expected)
METRES_BELOW = 20.0


def check_depth_argument(depth, source: str | None = None) -> np.ndarray:
    """``depth`` as a numpy array: tensors are detached and moved to the CPU, ragged or non-array
    input raises :class:`InputError` naming the argument. Values are checked by ``preprocess``."""
    if isinstance(depth, torch.Tensor):
        depth = depth.detach().cpu().numpy()
    try:
        arr = np.asarray(depth)
    except (ValueError, TypeError) as e:
        raise InputError(f"depth must be a 2-D numeric (H, W) array in mm, got {type(depth).__name__} "
                         f"({' '.join(str(e).split())[:60]})", source) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"depth must be a 2-D numeric (H, W) array in mm, got dtype {arr.dtype}", source)
    return arr


def check_depth_units(depth: np.ndarray, source: str | None = None) -> None:
    """Raise :class:`InputError` when every measured value is below :data:`METRES_BELOW` (metres, not mm)."""
    valid = depth[depth > 0]
    if valid.size and float(valid.max()) < METRES_BELOW:
        raise InputError(f"depth looks like metres (every measured value is below {METRES_BELOW:g}); scale it to "
                         "mm (predict --depth-scale 1000)", source)


@dataclass
class Result:
    """One frame's reconstruction. Conventions: docs/conventions.md (mm, OpenCV camera frame,
    quaternion w first, yaw/pitch/roll in degrees after Biwi, pose maps head to camera).

    ``found=False``: no face. The pose fields are then ``None`` when no head was localised, else the
    networks' answer, which is *not* a face's pose (kept for diagnostics and evaluation)."""

    found: bool
    reason: str
    confidence: float = 0.0
    rotation: np.ndarray | None = None  # (3, 3)
    quaternion: np.ndarray | None = None  # (4,) w, x, y, z
    ypr: np.ndarray | None = None  # (3,) yaw, pitch, roll in degrees
    translation: np.ndarray | None = None  # (3,) head centre, mm, camera frame
    vertices_head: np.ndarray | None = None  # (V, 3) canonical head frame, mm
    vertices_camera: np.ndarray | None = None  # (V, 3) camera frame, mm
    landmarks3d: np.ndarray | None = None  # (68, 3) camera frame, mm
    landmarks2d: np.ndarray | None = None  # (68, 2) pixels of the input frame
    crop_centre: np.ndarray | None = None  # (3,) the refined crop's centre
    centre_source: str = ""
    extras: dict = field(default_factory=dict)
    face_score: float = 0.0  # landmark match x localiser score, in [0, 1]: gates "no face"
    flagged: bool = False  # confidence below the calibration's threshold: the pose is likely off by > 10 deg


class Reconstructor:
    """Pose (and optionally shape) networks plus the face model, ready for frames.

    ``Reconstructor()`` with no networks loads the release models that ship with depthface
    (``docs/models.md``) and the default face model.

    Args:
        pose_net: a DAPoseNet (or an ONNX wrapper with the same call) in eval mode; ``None`` (with
            ``shape_net`` and ``face_model`` also ``None``): the release models.
        shape_net: a DASHapeNet (or ONNX wrapper) or ``None`` for pose only (the mean face is placed).
        face_model: the face model both were trained with.
        device: torch device of the networks.
        min_face_score: below this face score a frame gets the verdict "no face".
        refine_steps: re-crops around the predicted head centre (1 = once, as documented).
        face_check: judge with the geometric face check (:mod:`depthface.inference.verdict`; default);
            ``False`` keeps the face-score threshold alone.
        refine: test-time model fit after the networks (beyond the paper): ``"pose+shape"`` (default: pose,
            identity and expression fitted from the networks' answer; it recovers the person's face and
            improves the pose on every test set of docs/models.md, for about 30 ms a frame), ``"none"`` (the
            paper: the networks alone) or ``"pose"`` (robust point-to-plane ICP of the network's face, which
            does not win); :func:`depthface.facemodel.fit.refine_prediction`. A fit that turns the head by more
            than the confidence's error bound (10 deg) from the networks' answer is kept only where the
            confidence flags that answer; otherwise the networks' answer stays (``extras["fit_turn_deg"]``).
        confidence: the pose confidence's calibration (:class:`ConfidenceCalibration` or its JSON file);
            ``"release"`` (default): the one fitted for the release pose network (docs/models.md);
            ``None``: no calibrated confidence (``confidence`` is then the face score, never flagged;
            saves the cues' time, docs/models.md).
    """

    def __init__(self, pose_net=None, shape_net=None, face_model: MorphableModel | None = None, device: str = "cpu",
                 min_face_score: float = 0.3, refine_steps: int = 1, face_check: bool = True,
                 refine: str = "pose+shape", confidence: ConfidenceCalibration | str | Path | None = "release") -> None:
        if not (isinstance(min_face_score, (int, float)) and 0.0 <= min_face_score <= 1.0):
            raise DepthfaceError(f"min_face_score must be a number in [0, 1], got {min_face_score!r}")
        if not (isinstance(refine_steps, int) and refine_steps >= 0):
            raise DepthfaceError(f"refine_steps must be a non-negative integer, got {refine_steps!r}")
        if refine not in REFINE_MODES:
            raise DepthfaceError(f"refine must be one of {', '.join(REFINE_MODES)}, got {refine!r}")
        if pose_net is None:
            if shape_net is not None or face_model is not None:
                raise DepthfaceError("give a pose network (or none of pose_net, shape_net, face_model for the "
                                     "release models)")
            pose_net, shape_net, face_model, device = _release_networks(device)
        self.face_check = bool(face_check)
        self._template = FaceTemplate.from_face_model(face_model)
        if isinstance(confidence, str) and confidence == "release":
            confidence = release_calibration()
        elif confidence is not None and not isinstance(confidence, ConfidenceCalibration):
            confidence = ConfidenceCalibration.load(confidence)
        self.confidence = confidence
        self.pose_net = pose_net
        self.shape_net = shape_net
        self.face_model = face_model
        self.device = device
        self.min_face_score = min_face_score
        self.refine_steps = refine_steps
        self._reference_landmarks = face_model.landmarks(face_model.mean[None])[0].double().numpy()
        self._regressed = face_model.regressed_vertices.cpu().numpy()
        self._mean = face_model.mean.double().numpy()
        # --- test-time refinement (issue 12): set up once per model
        self.refine = refine
        self._fit_region = prepare_fit_region(face_model) if refine != "none" else None

    @classmethod
    def from_checkpoints(cls, pose: str | Path | None = None, shape: str | Path | None = None,
                         face_model: str | Path | None = None, device: str = "cpu", backend: str = "torch",
                         **kwargs) -> "Reconstructor":
        """Load trained networks (run directories or checkpoint files; ``backend="onnx"`` takes ``.onnx`` files).

        ``pose=None``: the release pose network, with the release shape network unless ``shape`` is given.
        """
        from depthface.train.common import pick_device

        if pose is None:
            if backend != "torch":
                raise DepthfaceError("the release models are PyTorch checkpoints: export them first "
                                     "(depthface export) to use --backend onnx")
            from depthface.models.release import release_checkpoint

            pose, shape = release_checkpoint("pose"), shape or release_checkpoint("shape")
        device = pick_device(device)
        model = load_face_model(face_model)
        if backend == "onnx":
            from depthface.models.export import OnnxPoseNet, OnnxShapeNet

            pose_net = OnnxPoseNet(pose)
            shape_net = OnnxShapeNet(shape) if shape is not None else None
        elif backend == "torch":
            from depthface.train.pose import load_pose_net
            from depthface.train.shape import load_shape_net

            pose_net, ck = load_pose_net(pose, device)
            checked = [(pose, ck)]
            shape_net = None
            if shape is not None:
                shape_net, sck = load_shape_net(shape, device)
                checked.append((shape, sck))
            for path, c in checked:
                fm = c.get("face_model")
                want = fm.get("sha256") if isinstance(fm, dict) else None
                if want and want != model.sha256:
                    raise DepthfaceError(f"{path}: trained with another face model (sha256 {str(want)[:12]}...) "
                                         f"than {model.source}; pass --face-model")
        else:
            raise DepthfaceError(f"unknown backend {backend!r}; use torch or onnx")
        return cls(pose_net, shape_net, model, device, **kwargs)

    def predict(self, depth: np.ndarray, intrinsics: Intrinsics, centre: np.ndarray | None = None,
                source: str | None = None) -> Result:
        """Reconstruct one frame.

        Args:
            depth: ``(H, W)`` depth in mm (0 = no measurement).
            intrinsics: the frame's camera.
            centre: ``(3,)`` crop centre (mm) to use instead of the automatic head localisation.
            source: file name for messages.

        Returns:
            A :class:`Result`; ``found=False`` with a reason for frames without a face.

        Raises:
            InputError: unreadable depth (NaN, negative, wrong size, all zero, ...).
        """
        if not isinstance(intrinsics, Intrinsics):
            raise InputError(f"intrinsics must be an Intrinsics (e.g. Intrinsics.preset('kinect_v1')), got "
                             f"{type(intrinsics).__name__}", source)
        intrinsics.check_principal_point(source)
        depth = check_depth_argument(depth, source)
        if centre is not None:
            try:
                centre = np.asarray(centre, dtype=np.float64)
            except (ValueError, TypeError):
                raise InputError("centre must be 3 finite numbers (mm) with z > 0", source) from None
        return self.predict_batch([depth], intrinsics, [centre], [source])[0]

    def _refine_fit(self, depth: np.ndarray, intrinsics: Intrinsics, R: np.ndarray, t: np.ndarray, head: np.ndarray,
                    free: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """The measured points within 170 mm of the predicted head centre (full resolution), and the fit.

        The guard: a fit that turns the head by more than the confidence's error bound (10 deg) from the
        networks' answer is kept only when ``free`` (the calibrated confidence flags that answer: likely off
        by more than that); otherwise the networks' whole answer stays (measured in docs/models.md: without
        it, fits of heads turned 60-70 deg away, where half the face is visible, slid off).
        """
        k = intrinsics
        z0 = max(float(t[2]), 1.0)
        half = 170.0 * max(k.fx, k.fy) / z0
        uc, vc = k.fx * t[0] / z0 + k.cx, k.fy * t[1] / z0 + k.cy
        u0, u1 = int(max(0, np.floor(uc - half))), int(min(k.width, np.ceil(uc + half) + 1))
        v0, v1 = int(max(0, np.floor(vc - half))), int(min(k.height, np.ceil(vc + half) + 1))
        z = torch.from_numpy(np.asarray(depth, np.float64)[v0:v1, u0:u1])
        pts = depth_to_points(z, k.scaled(1.0, 1.0, u0, v0)).numpy()
        fit = refine_prediction(pts, self._fit_region, R, t, head, self.refine)
        if fit is None or fit.n_pairs < 50:  # too little face to fit: keep the networks' answer
            return R, t, head, {"refine": self.refine, "refined": False}
        turn = geodesic_angle_deg(torch.from_numpy(fit.R), torch.from_numpy(R)).item()
        bound = self.confidence.error_deg if self.confidence is not None else FIT_TURN_BOUND_DEG
        if turn > bound and not free:
            return R, t, head, {"refine": self.refine, "refined": False, "fit_turn_deg": turn}
        return (fit.R, fit.t, fit.vertices.astype(np.float64),
                {"refine": self.refine, "refined": True, "fit_rms_mm": fit.rms_mm,
                 "fit_inlier_fraction": fit.inlier_fraction, "fit_turn_deg": turn})

    def _landmark_match(self, prep: Preprocessed, R: np.ndarray, t: np.ndarray, head: np.ndarray) -> float:
        """Share of the 68 landmarks, posed, within ``CONFIDENCE_MATCH_MM`` of a measured point of the crop."""
        kc = prep.crop_intrinsics
        lm3 = (head[self._landmark_ids] @ R.T) + t
        return float(_landmarks_near(prep.position.numpy(), lm3, kc.fx, kc.fy, kc.cx, kc.cy,
                                     CONFIDENCE_MATCH_MM)) / len(lm3)

    # ------------------------------------------------------------------------------------------------
    # batches: one network call per stage for a group of frames (issue 13)

    def predict_batch(self, frames, intrinsics: Intrinsics | list[Intrinsics], centres: list | None = None,
                      sources: list[str | None] | None = None, max_batch: int = 64,
                      on_error: str = "raise", refine_steps: int | None = None,
                      centre_source: str = "ground_truth") -> list[Result]:
        """Reconstruct a group of frames, batching every network call (pose, refined pose, shape).

        Frame by frame the results equal :meth:`predict`'s (``tests/test_end_to_end.py``); only the
        networks see the frames together, at most ``max_batch`` at a time. The landmark matching of the
        confidence is an exact windowed search in the crop (no k-d tree per frame).

        Args:
            frames: ``B`` depth frames ``(H, W)`` in mm (0 = no measurement), or a ``(B, H, W)`` array.
            intrinsics: one camera for all frames, or ``B`` of them.
            centres: ``None`` (localise every frame), or ``B`` entries, each ``None`` (localise) or a
                ``(3,)`` crop centre in mm (a ground truth, or the previous frame's head when tracking).
            sources: ``B`` file names for messages (or ``None``).
            max_batch: most frames per network call.
            on_error: ``"raise"``: an unreadable frame raises its :class:`InputError` (as :meth:`predict`);
                ``"result"``: it gets a ``Result(found=False)`` whose reason starts with ``"bad input: "``.
            refine_steps: re-crops around the predicted head (default: the reconstructor's; 0 when the
                given centres already are good heads, e.g. the previous frame's when tracking).
            centre_source: what the given centres are (``ground_truth`` or ``previous_frame``; in the reasons).

        Returns:
            ``B`` :class:`Result`.
        """
        from depthface.data.preprocess import check_frame, crop_around
        from depthface.errors import InputError

        if on_error not in ("raise", "result"):
            raise DepthfaceError(f"on_error must be 'raise' or 'result', got {on_error!r}")
        if max_batch < 1:
            raise DepthfaceError(f"max_batch must be at least 1, got {max_batch}")
        steps = self.refine_steps if refine_steps is None else int(refine_steps)
        if centre_source not in ("ground_truth", "previous_frame"):
            raise DepthfaceError(f"centre_source must be ground_truth or previous_frame, got {centre_source!r}")
        n = len(frames)
        ks = list(intrinsics) if isinstance(intrinsics, (list, tuple)) else [intrinsics] * n
        cs = list(centres) if centres is not None else [None] * n
        srcs = list(sources) if sources is not None else [None] * n
        if not len(ks) == len(cs) == len(srcs) == n:
            raise DepthfaceError(f"predict_batch: {n} frames but {len(ks)} intrinsics, {len(cs)} centres and "
                                 f"{len(srcs)} sources")
        results: list[Result | None] = [None] * n
        preps: dict[int, tuple[np.ndarray, Preprocessed]] = {}
        for i in range(n):
            try:
                d = check_frame(frames[i], ks[i], srcs[i])
                check_depth_units(d, srcs[i])
                preps[i] = (d, preprocess(d, ks[i], cs[i], source=srcs[i], checked=True))
            except HeadNotFoundError as e:
                results[i] = Result(False, str(e))
            except InputError as e:
                if on_error == "raise":
                    raise
                results[i] = Result(False, f"bad input: {e}", extras={"error": str(e)})
        todo = sorted(preps)
        for start in range(0, len(todo), max_batch):
            group = todo[start:start + max_batch]
            ds = [preps[i][0] for i in group]
            gp = [preps[i][1] for i in group]
            first = [centre_source if p.centre_source == "ground_truth" else p.centre_source for p in gp]
            x = self._batch_input(gp)
            q, t = self._pose_batch(gp, x)
            q_first = q
            for _ in range(steps):
                gp = [crop_around(d, ks[i], t[j], "refined", p.localization)
                      for j, (i, d, p) in enumerate(zip(group, ds, gp))]
                x = self._batch_input(gp)
                q, t = self._pose_batch(gp, x)
            heads = self._shape_batch(x)
            R = quaternion_to_matrix(torch.from_numpy(q)).numpy()
            ypr = matrix_to_euler(torch.from_numpy(R)).numpy()
            change = (geodesic_angle_deg(quaternion_to_matrix(torch.from_numpy(q_first)), torch.from_numpy(R)).numpy()
                      if steps > 0 else [None] * len(group))  # how far the re-crop turned the answer
            for j, i in enumerate(group):
                results[i] = self._finish(ds[j], gp[j], ks[i], q[j], t[j], heads[j], first[j], steps > 0, R[j], ypr[j],
                                          None if change[j] is None else float(change[j]))
        return results  # type: ignore[return-value]

    def _batch_input(self, preps: list[Preprocessed]) -> torch.Tensor:
        """The normalised ``(B, 3, 160, 160)`` network input of preprocessed frames (stacked by NumPy: a
        multi-threaded ``torch.stack`` waits at its barrier on a busy machine)."""
        pos = torch.from_numpy(np.stack([p.position.numpy() for p in preps]))
        c = torch.as_tensor(np.stack([p.crop_centre for p in preps]), dtype=torch.float32)
        k = torch.as_tensor(np.stack([p.crop_intrinsics_array for p in preps]), dtype=torch.float32)
        return normalize_position(pos, c, k).to(self.device)

    def _pose_batch(self, preps: list[Preprocessed], x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(B, 4)`` quaternions and ``(B, 3)`` head centres (mm) of a batch (float64)."""
        with torch.inference_mode():
            q, t = self.pose_net(x)
        centres = np.stack([p.crop_centre for p in preps])
        return q.double().cpu().numpy(), centres + t.double().cpu().numpy()

    def _shape_batch(self, x: torch.Tensor) -> np.ndarray:
        """``(B, V, 3)`` head-frame vertices (mm, float64) of a batch (the mean face without a shape network)."""
        v = np.repeat(self._mean[None], len(x), axis=0)
        if self.shape_net is not None:
            with torch.inference_mode():
                d = self.shape_net(x).double().cpu().numpy()
            v[:, self._regressed] += d
        return v

    def _finish(self, depth: np.ndarray, prep: Preprocessed, k: Intrinsics, q: np.ndarray, t: np.ndarray,
                head: np.ndarray, first_source: str, refined: bool = True, R: np.ndarray | None = None,
                ypr: np.ndarray | None = None, refine_change_deg: float | None = None) -> Result:
        """One frame's :class:`Result` from its final crop, pose and head-frame vertices: the optional model
        fit, the face score, the calibrated confidence and the face verdict (``R`` and ``ypr`` when the
        caller converted the batch's quaternions at once; ``refine_change_deg``: how far the re-crop moved
        the rotation, ``None`` without a re-crop)."""
        if R is None or ypr is None:
            R = quaternion_to_matrix(torch.from_numpy(q)).numpy()
            ypr = matrix_to_euler(torch.from_numpy(R)).numpy()
        # the calibrated confidence's cues, at the networks' pose (what the calibration was fitted on)
        match = self._landmark_match(prep, R, t, head)
        extras: dict = {}
        conf, flagged = None, False
        if self.confidence is not None:
            cues = pose_features(depth, k, self._template, R, t, match, refine_change_deg)
            extras["confidence_features"] = cues
            conf = self.confidence.confidence(cues)
            flagged = conf < self.confidence.threshold
        if self.refine != "none":  # test-time model fit after the networks (a separate step, beyond the paper)
            R, t, head, fit_info = self._refine_fit(depth, k, R, t, head, free=flagged)
            extras.update(fit_info)
            if fit_info["refined"]:
                q = matrix_to_quaternion(torch.from_numpy(R)).numpy()
                ypr = matrix_to_euler(torch.from_numpy(R)).numpy()
                match = self._landmark_match(prep, R, t, head)
        cam = head @ R.T + t
        lm3 = cam[self._landmark_ids]
        lm2 = np.stack((k.fx * lm3[:, 0] / lm3[:, 2] + k.cx, k.fy * lm3[:, 1] / lm3[:, 2] + k.cy), -1)
        loc_score = prep.localization.score if prep.localization is not None else 1.0
        face_score = match * loc_score
        found = face_score >= self.min_face_score
        then = ", then refined" if refined else ""
        reason = (f"face found (crop centre from the {first_source.replace('_', ' ')}{then})" if found else
                  f"no face: only {match:.0%} of the posed landmarks meet the depth (face score {face_score:.2f})")
        extras = {"landmark_match": match, "localizer_score": loc_score, "face_score": face_score, **extras}
        if conf is None:
            conf = face_score
        if found and self.face_check:
            v = face_verdict(depth, k, self._template, R, t)
            extras.update({"face_relief": v.relief, "face_relief_correlation": v.relief_correlation,
                           "face_inliers": v.inliers})
            found = v.face
            reason = f"{reason}; {v.reason}" if found else v.reason
        return Result(found, reason, conf, R, q, ypr, t, head, cam, lm3, lm2, prep.crop_centre, first_source, extras,
                      face_score, bool(flagged))

    @property
    def _landmark_ids(self) -> np.ndarray:
        return self.face_model.landmarks68.cpu().numpy()


def _release_networks(device: str = "cpu") -> tuple:
    """``(pose_net, shape_net, face_model, device)`` of the release models (``depthface.models.release``)."""
    from depthface.models.release import release_checkpoint
    from depthface.train.common import pick_device
    from depthface.train.pose import load_pose_net
    from depthface.train.shape import load_shape_net

    device = pick_device(device)
    return (load_pose_net(release_checkpoint("pose"), device)[0], load_shape_net(release_checkpoint("shape"), device)[0],
            load_face_model(), device)


@njit(cache=True, nogil=True)
def _landmarks_near(position, points, fx, fy, cx, cy, radius):  # pragma: no cover - compiled
    """How many of ``points (N, 3)`` (mm) lie closer than ``radius`` to a measured point of the position
    image ``position (3, H, W)`` (mm, ``Z = 0`` unmeasured) whose pixels back-project with ``fx, fy, cx,
    cy``. Exact: a measured point ``p`` with ``|p - l| < r`` projects within
    ``f r (z + |x|) / ((z - r) z)`` pixels of ``l``'s projection, so only that window (plus one pixel) is
    searched; a point with ``z <= r`` searches the whole image."""
    _, h, w = position.shape
    r2 = radius * radius
    count = 0
    for n in range(points.shape[0]):
        x, y, z = points[n, 0], points[n, 1], points[n, 2]
        if z > radius:
            hu = fx * radius * (z + abs(x)) / ((z - radius) * z) + 1.0
            hv = fy * radius * (z + abs(y)) / ((z - radius) * z) + 1.0
            u, v = fx * x / z + cx, fy * y / z + cy
            j0, j1 = int(min(max(np.floor(u - hu), 0.0), w)), int(min(max(np.ceil(u + hu) + 1.0, 0.0), w))
            i0, i1 = int(min(max(np.floor(v - hv), 0.0), h)), int(min(max(np.ceil(v + hv) + 1.0, 0.0), h))
        else:
            i0, i1, j0, j1 = 0, h, 0, w
        hit = False
        for i in range(i0, i1):
            for j in range(j0, j1):
                pz = position[2, i, j]
                if pz > 0:
                    dx, dy, dz = position[0, i, j] - x, position[1, i, j] - y, pz - z
                    if dx * dx + dy * dy + dz * dz < r2:
                        hit = True
                        break
            if hit:
                break
        if hit:
            count += 1
    return count


def inference_threads(requested: int | str | None = "auto") -> int:
    """How many threads the networks should use: ``requested`` when it is a number, else (``auto``) all
    the cores this process may use on an idle machine but **one** when the machine is already busy
    (1-minute load average above ``cores - 0.5``). On a busy machine every extra intra-op thread waits at
    each operation's barrier for a descheduled sibling: on the shared 2-core machine (load average 12-14)
    the paper-size path ran at 0.3 frames/s with 2 threads and 1.6 with one, the small one at 1.0 and 6.3
    (PyTorch, one frame per call; ``benchmarks/results/end_to_end_2threads.json`` and ``end_to_end.json``)."""
    import os

    from depthface.models.export import cpu_count

    cores = cpu_count()
    if requested not in (None, "auto"):
        n = int(requested)
        if n < 1:
            raise DepthfaceError(f"threads must be at least 1, got {n}")
        return n
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return 1 if load > cores - 0.5 else cores


def set_inference_threads(requested: int | str | None = "auto") -> int:
    """``torch.set_num_threads(inference_threads(requested))``; returns the number set. A ``requested`` that
    is neither a number nor ``"auto"`` raises ``ValueError``."""
    n = inference_threads(requested)
    torch.set_num_threads(n)
    return n
