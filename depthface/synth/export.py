"""``depthface data export``: re-render the full frames of a synthetic dataset and write them in a real layout.

A synthetic dataset (:mod:`depthface.synth.storage`) stores 160x160 crops, labels and a few full frames;
every sample is a pure function of ``(seed, index)``. This module rebuilds the dataset's profile and
sensor from its ``manifest.json``, re-renders the requested samples as full frames and hands them to
:mod:`depthface.data.export` (which does not import :mod:`depthface.synth`, hence this module lives here).

What the exported frames are
    * Camera: the dataset's own for ``biwi`` (written to ``depth.cal``); the ``ict3dhp`` preset for
      ``ict3dhp`` (that layout cannot store another camera; the scenes, hence the poses, are unchanged,
      only the image is rendered with the ICT camera).
    * Sensor: clean datasets export clean renders (the face model on an empty background). Datasets made
      with a simulated sensor export **full** simulated frames (``simulate_kinect(..., window_mm=None)``:
      hair, body, wall and boxes over the whole image, as a real Kinect frame) with the stored sample's
      sensor random stream, exactly as :mod:`depthface.synth.storage` makes its whole frames
      (``frames/NNNNNN.npy`` are bit-identical to the export of the same samples). The stored crops
      were cut from frames simulated only in a 340 mm window around the true head (zero elsewhere,
      which would give the head's position away); ``sensor_window=True`` exports those instead (their
      crops around the stored crop centres equal the stored crops).
    * Poses: each scene's ``(R, t)`` in float64; the stored float32 labels are checked against them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from depthface.data.export import EXPORT_FORMATS, ExportFrame, ExportSummary, export_frames
from depthface.data.ict3dhp import ICT3DHP_INTRINSICS
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics

__all__ = ["profile_from_manifest", "sensor_from_manifest", "select_indices", "render_full_frames", "export_synthetic"]


def profile_from_manifest(root: Path, manifest: dict):
    """The :class:`~depthface.synth.profiles.SynthProfile` that made a dataset, from its manifest (and
    ``poses.npy`` when it sampled real poses)."""
    from depthface.synth.profiles import PoseRange, get_profile

    try:
        base = get_profile(manifest["profile"])
        prof = replace(base, n_identities=int(manifest["n_identities"]), n_frames=int(manifest["n_frames"]),
                       expressions=tuple(manifest["expressions"]), intrinsics=Intrinsics(**manifest["intrinsics"]),
                       pose=PoseRange(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in manifest["pose_range"].items()}),
                       identity_scale=float(manifest["identity_scale"]),
                       crop_jitter_mm=float(manifest["crop_jitter_mm"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"manifest lacks what the export needs to re-render ({type(e).__name__}: {e})",
                         root / "manifest.json") from None
    if manifest.get("poses_from_list"):
        path = root / "poses.npy"
        if not path.exists():
            raise InputError("the dataset sampled real poses but poses.npy is missing", path)
        prof = replace(prof, poses=np.load(path))
    return prof


def sensor_from_manifest(root: Path, manifest: dict):
    """The dataset's :class:`~depthface.synth.sensor.SimulationProfile`, or ``None`` for a clean dataset."""
    from depthface.synth.sensor import SimulationProfile

    spec = manifest.get("sensor")
    if spec is None:
        return None
    try:
        return SimulationProfile.from_manifest(spec)
    except TypeError as e:
        raise InputError(f"sensor in the manifest does not match this version's SimulationProfile ({e})",
                         root / "manifest.json") from None


def select_indices(n_frames: int, n: int | None, split_indices: np.ndarray | None = None) -> np.ndarray:
    """``n`` sample indices spread evenly over the dataset (or over ``split_indices``); all when ``n`` is None."""
    pool = np.arange(n_frames) if split_indices is None else np.asarray(split_indices)
    if n is None or n >= len(pool):
        return pool
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    return pool[np.unique(np.linspace(0, len(pool) - 1, n).round().astype(int))]


def render_full_frames(root: Path, indices: np.ndarray, intrinsics: Intrinsics | None = None,
                       sensor_window: bool = False, face_model: str | Path | None = None,
                       check_labels: bool = True) -> Iterator[ExportFrame]:
    """Re-render samples of a synthetic dataset as full frames (see the module docstring).

    Args:
        root: the dataset directory.
        indices: sample indices.
        intrinsics: camera to render with (default: the dataset's).
        sensor_window: simulate the sensor only in the 340 mm window the stored crops were cut from.
        face_model: the face-model file the dataset was made with (default model otherwise); its sha256
            must match the manifest's.
        check_labels: compare each scene's pose with the stored labels (raises on a mismatch).

    Yields:
        :class:`ExportFrame` records (uint16 depth, float64 pose, identity, index).
    """
    from depthface.facemodel import load_face_model
    from depthface.synth.scenes import SceneSampler
    from depthface.synth.storage import ChunkedArrays, read_manifest, render_frame

    manifest = read_manifest(root)
    model = load_face_model(face_model)
    if model.sha256 != manifest["face_model"].get("sha256"):
        raise InputError(f"the dataset was made with face model {manifest['face_model'].get('name')} "
                         f"(sha256 {str(manifest['face_model'].get('sha256'))[:12]}...), not the one loaded "
                         f"({model.name}, {model.sha256[:12]}...); pass --face-model", root / "manifest.json")
    profile = profile_from_manifest(root, manifest)
    sensor = sensor_from_manifest(root, manifest)
    sampler = SceneSampler(model, profile, int(manifest["seed"]))
    K = intrinsics or profile.intrinsics
    labels = ChunkedArrays(root) if check_labels else None
    for index in map(int, indices):
        if not 0 <= index < profile.n_frames:
            raise InputError(f"sample {index} is out of range (dataset has {profile.n_frames} frames)", root)
        frame, scene, _ = render_frame(sampler, sensor, int(manifest["seed"]), index, K, full=not sensor_window)
        if labels is not None:
            stored = labels.get(index, "translation")
            if not np.allclose(stored, scene.translation, atol=1e-2):
                raise InputError(f"sample {index}: re-rendered head centre {np.round(scene.translation, 2).tolist()} "
                                 f"differs from the stored label {np.round(stored, 2).tolist()} (dataset made by "
                                 f"another generator version?)", root)
        yield ExportFrame(frame, scene.rotation, scene.translation,
                          scene.identity_id, index)


def export_synthetic(src: str | Path, fmt: str, out: str | Path, n: int | None = None, split: str | None = None,
                     sensor_window: bool = False, face_model: str | Path | None = None) -> ExportSummary:
    """Export samples of the synthetic dataset ``src`` as a Biwi or ICT-3DHP dataset in ``out``.

    Args:
        src: synthetic dataset directory (``manifest.json``, ``chunks/``).
        fmt: ``"biwi"`` or ``"ict3dhp"``.
        out: output folder (must not exist or be empty).
        n: number of samples, spread evenly over the dataset (default: all).
        split: only samples of this identity split (``train``/``val``/``test``; default all).
        sensor_window: export the windowed sensor frames the stored crops were cut from, not full frames.
        face_model: face-model file the dataset was made with.

    Returns:
        The :class:`~depthface.data.export.ExportSummary`.
    """
    from depthface.synth.storage import ChunkedArrays, read_manifest

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    root = Path(src)
    manifest = read_manifest(root)
    split_idx = ChunkedArrays(root).indices(split) if split is not None else None
    indices = select_indices(int(manifest["n_frames"]), n, split_idx)
    K = ICT3DHP_INTRINSICS if fmt == "ict3dhp" else Intrinsics(**manifest["intrinsics"])
    provenance = {"source": str(root.resolve()), "profile": manifest["profile"], "seed": manifest["seed"],
                  "generator_version": manifest.get("generator_version"),
                  "face_model": manifest["face_model"].get("name"),
                  "sensor": None if manifest.get("sensor") is None else manifest["sensor"].get("name"),
                  "sensor_window": bool(sensor_window), "split": split,
                  "camera": "dataset" if fmt == "biwi" else "ict3dhp preset"}
    frames = render_full_frames(root, indices, K, sensor_window, face_model)
    summary = export_frames(out, frames, fmt, K, json.loads(json.dumps(provenance)))
    return summary
