"""``predict`` as a library function: a run over many depth files, one row per frame, never stopped by one.

:func:`predict_frames` yields one row per input (``status``: ``face``, ``no face`` or ``unreadable``)
and writes each frame's outputs (meshes, landmarks, overlay) under ``out/frames/<output name>/``;
:func:`run_predict` collects the inputs, runs it, writes ``poses.csv``/``poses.json`` (also when
interrupted: the rows so far) and returns a :class:`PredictSummary`. Every failure of one file (reading,
a bad camera for its size, an unexpected error inside the reconstruction) becomes that file's
"unreadable" row with the reason, and the run goes on.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from depthface.files import file_problem
from depthface.errors import InputError
from depthface.geometry.camera import PRESETS, Intrinsics, read_biwi_calibration
from depthface.inference.io import (
    CollectedInputs,
    InputFrame,
    collect_inputs,
    display_name,
    read_depth_file,
    unique_output_names,
    write_poses,
)


@dataclass(frozen=True)
class Camera:
    """The default camera of a run. ``sized``: the intrinsics belong to an image size (a preset, a
    ``depth.cal``), so frames of another size of the same aspect ratio get them rescaled; otherwise
    (``fx,fy,cx,cy`` given) they describe the frames as they are."""

    intrinsics: Intrinsics
    sized: bool


def parse_camera(text: str) -> Camera:
    """``--intrinsics``: a preset name, a Biwi ``depth.cal`` file, or ``fx,fy,cx,cy``."""
    if text.lower() in PRESETS:
        return Camera(Intrinsics.preset(text), True)
    if os.path.lexists(text):
        problem = file_problem(text, 1 << 20)
        if problem is not None:
            raise InputError(problem, display_name(text))
        return Camera(read_biwi_calibration(text).intrinsics, True)
    return Camera(Intrinsics.parse(text), False)


def frame_intrinsics(k: Intrinsics, sized: bool, width: int, height: int, source: str | None = None) -> Intrinsics:
    """The intrinsics of a ``width`` x ``height`` frame.

    Same size: ``k``. Unsized intrinsics (``fx,fy,cx,cy``) take the frame's size. Sized ones are
    rescaled when the aspect ratio matches (pixel centres at integers: ``u' = s (u + 0.5) - 0.5``, so
    ``f' = s f`` and ``c' = s (c + 0.5) - 0.5``); another aspect ratio is refused (one-line InputError).
    """
    if (k.width, k.height) == (width, height):
        return k
    if not sized:
        return Intrinsics(k.fx, k.fy, k.cx, k.cy, width, height)
    sx, sy = width / k.width, height / k.height
    if abs(sx - sy) > 0.01 * max(sx, sy):
        raise InputError(f"frame is {width}x{height} but the intrinsics are for {k.width}x{k.height} (another aspect "
                         "ratio): pass --intrinsics fx,fy,cx,cy for this camera", source)
    return k.scaled(sx, sy, (1 - sx) / (2 * sx), (1 - sy) / (2 * sy), width, height)


@dataclass
class PredictSummary:
    """What a run did: rows (one per input), counts, what was skipped, where it wrote."""

    out: Path
    rows: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.get("status") == status)

    @property
    def n_frames(self) -> int:
        return len(self.rows)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        return (f"{self.n_frames} frame(s): {self.count('face')} with a face, {self.count('no face')} without, "
                f"{self.count('unreadable')} unreadable; wrote {self.out / 'poses.csv'}")


def _unreadable(fr: InputFrame, reason: str) -> dict:
    return {"frame": fr.name, "found": False, "status": "unreadable", "reason": f"bad input: {reason}"}


def _pose_row(fr: InputFrame, res) -> dict:
    row = {"frame": fr.name, "found": bool(res.found), "status": "face" if res.found else "no face",
           "confidence": round(float(res.confidence), 4), "flagged": bool(res.flagged), "reason": res.reason}
    if res.found and res.rotation is not None:
        row.update({"yaw_deg": round(float(res.ypr[0]), 3), "pitch_deg": round(float(res.ypr[1]), 3),
                    "roll_deg": round(float(res.ypr[2]), 3),
                    **{f"t{a}_mm": round(float(v), 2) for a, v in zip("xyz", res.translation)},
                    **{f"q{a}": round(float(v), 6) for a, v in zip("wxyz", res.quaternion)},
                    **{f"r{i}{j}": round(float(res.rotation[i, j]), 6) for i in range(3) for j in range(3)}})
    return row


def _write_frame(rec, d: Path, fr: InputFrame, depth: np.ndarray, k: Intrinsics, res, meshes: bool,
                 overlays: bool) -> None:
    from depthface.inference.pictures import save_overlay

    d.mkdir(parents=True, exist_ok=True)
    if meshes:
        rec.face_model.export_mesh(res.vertices_camera, d / "mesh_camera.ply")
        rec.face_model.export_mesh(res.vertices_head, d / "mesh_head.ply")
    (d / "landmarks.json").write_text(json.dumps({"landmarks3d_mm": res.landmarks3d.round(3).tolist(),
                                                  "landmarks2d_px": res.landmarks2d.round(2).tolist()}) + "\n")
    if overlays:
        y, p, r = res.ypr
        save_overlay(d / "overlay.png", depth, k, res.vertices_camera, res.landmarks2d, res.rotation, res.translation,
                     f"{fr.name}: yaw {y:+.1f} pitch {p:+.1f} roll {r:+.1f} deg, confidence {res.confidence:.2f}")


def predict_frames(rec, frames: list[InputFrame], out: str | Path, camera: Camera, depth_scale: float = 1.0,
                   meshes: bool = True, overlays: bool = True) -> Iterator[dict]:
    """Reconstruct each frame; yield its row (keys of :data:`depthface.inference.io.POSE_COLUMNS`).

    A frame with a face gets ``out/frames/<output name>/`` (meshes, landmarks, overlay; the output
    name keeps the relative path, escaped and hashed where not portable, unique per run); frames
    without a face or unreadable get their row only. No error of one frame stops the iteration.
    """
    out = Path(out)
    names = unique_output_names([fr.name for fr in frames])
    for fr, oname in zip(frames, names):
        if fr.problem is not None:
            yield _unreadable(fr, f"{display_name(fr.path)}: {fr.problem}")
            continue
        depth = k = None
        try:
            depth = read_depth_file(fr.path, depth_scale)
            base = fr.intrinsics or camera.intrinsics
            k = frame_intrinsics(base, camera.sized or fr.intrinsics is not None, depth.shape[1], depth.shape[0],
                                 fr.name)
            res = rec.predict(depth, k, source=fr.name)
        except (InputError, MemoryError) as e:
            yield _unreadable(fr, str(e) if isinstance(e, InputError) else f"{fr.name}: too large to process")
            continue
        except Exception as e:  # noqa: BLE001 - an unexpected failure costs this frame only, and says so
            yield _unreadable(fr, f"{fr.name}: internal error {type(e).__name__}: {' '.join(str(e).split())[:100]}")
            continue
        row = _pose_row(fr, res)
        if res.found and res.rotation is not None:
            try:
                _write_frame(rec, out / "frames" / oname, fr, depth, k, res, meshes, overlays)
                row["output"] = f"frames/{oname}"
            except OSError as e:
                row["reason"] += f"; outputs not written ({e.strerror})"
        yield row


def check_output_folder(out: str | Path) -> Path:
    """Create ``out`` (a folder); one-line InputError when it exists as something else or cannot be made."""
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise InputError("--out exists and is not a folder", display_name(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output folder ({e.strerror})", display_name(out)) from None
    return out


def run_predict(rec, inputs: list[str | Path], out: str | Path, camera: Camera, depth_scale: float = 1.0,
                meshes: bool = True, overlays: bool = True,
                progress: Callable[[Iterable, int], Iterable] | None = None,
                echo: Callable[[str], None] | None = None) -> PredictSummary:
    """The whole ``predict`` run: collect ``inputs`` (files and folders), reconstruct every frame, write
    ``poses.csv``/``poses.json`` in ``out``.

    Args:
        rec: a :class:`depthface.inference.Reconstructor`.
        inputs: depth files and folders.
        out: output folder (created; never read as input).
        camera: the default camera (:func:`parse_camera`); files in a Biwi/ICT-3DHP/depthface layout use theirs.
        depth_scale: multiply depth by this to get mm.
        meshes, overlays: write ``.ply`` meshes / overlay PNGs per frame with a face.
        progress: wraps the row iterator (e.g. a progress bar), called with ``(iterator, total)``.
        echo: prints a message (skipped entries, unreadable frames); default: silent.

    Returns:
        A :class:`PredictSummary`. On ``KeyboardInterrupt`` the rows so far are written and the
        summary is returned with ``interrupted=True``.
    """
    if not (isinstance(depth_scale, (int, float)) and math.isfinite(depth_scale) and depth_scale > 0):
        raise InputError(f"--depth-scale must be a finite positive number, got {depth_scale!r}")
    out = check_output_folder(out)
    collected: CollectedInputs = collect_inputs(inputs, exclude=out)
    summary = PredictSummary(out, skipped=collected.skipped)
    say = echo or (lambda _m: None)
    for s in collected.skipped:
        say(f"skipped: {s}")
    rows = predict_frames(rec, collected.frames, out, camera, depth_scale, meshes, overlays)
    if progress is not None:
        rows = progress(rows, len(collected.frames))
    try:
        for row in rows:
            summary.rows.append(row)
            if row["status"] == "unreadable":
                say(f"skipped: {row['reason'].removeprefix('bad input: ')}")
    except KeyboardInterrupt:
        summary.interrupted = True
    write_poses(out, summary.rows)
    return summary


__all__ = ["Camera", "PredictSummary", "parse_camera", "frame_intrinsics", "predict_frames", "run_predict",
           "check_output_folder"]
