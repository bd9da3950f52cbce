"""Head tracking over depth sequences: the previous pose sets the next crop, optional temporal filters.

Per frame (:class:`Tracker`): while tracking, the crop is cut around the previous frame's head centre
(predicted ahead with the head's velocity when a constant-velocity filter runs) and the pose network runs
**once** (that crop already is the refined one; :meth:`Reconstructor.predict` localises and refines);
the head localiser runs only on the first frame and when tracking is lost: a tracked frame whose
verdict is "no face" is retried at once with localisation (state ``relocalised``), and a frame where
that fails too is ``lost``. States: ``localised`` (first frame, or after a loss), ``tracked``,
``relocalised``, ``lost``, ``unreadable``.

Filters (beyond the paper, which works on single frames; ``filter="none"`` keeps the raw network output):
the One-Euro and constant-velocity filters of :mod:`depthface.inference.filters`, applied to the pose by
:class:`~depthface.inference.filters.PoseFilter`.

:func:`track_sequence` runs a :class:`Tracker` over frames and writes ``track.csv`` (one row per frame,
filtered and raw pose) and optionally a GIF/MP4 of overlays (imageio; MP4 needs ``imageio-ffmpeg``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from depthface.errors import DepthfaceError, InputError
from depthface.geometry.camera import Intrinsics
from depthface.geometry.rotations import matrix_to_euler, quaternion_to_matrix
from depthface.inference.filters import ConstantVelocityFilter, OneEuroFilter, PoseFilter
from depthface.inference.reconstructor import Reconstructor, Result

__all__ = ["TrackerConfig", "Tracker", "TrackedFrame",
           "SequenceFrame", "file_sequence", "open_sequence", "track_sequence", "TRACK_COLUMNS", "FILTERS"]

FILTERS = ("none", "one-euro", "constant-velocity")


# ------------------------------------------------------------------------------------------------
# the tracker


@dataclass(frozen=True)
class TrackerConfig:
    """How :class:`Tracker` follows a head.

    Attributes:
        filter: ``none`` (raw poses, the paper's per-frame output), ``one-euro`` or ``constant-velocity``.
        min_cutoff, beta, d_cutoff: the One-Euro filter's parameters (rotation in quaternion units, translation
            in mm; ``beta`` is shared).
        alpha, cv_beta: the constant-velocity filter's gains.
        refine_when_tracking: also re-crop and run the pose network a second time on tracked frames
            (default: once; the previous head already is a refined centre).
        track: follow the head (``False``: localise every frame, as ``predict`` does).
    """

    filter: str = "none"
    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0
    alpha: float = 0.5
    cv_beta: float = 0.1
    refine_when_tracking: bool = False
    track: bool = True

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise DepthfaceError(f"unknown filter {self.filter!r}; choose one of {', '.join(FILTERS)}")

    def make_filter(self) -> PoseFilter | None:
        if self.filter == "one-euro":
            return PoseFilter(lambda: OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff))
        if self.filter == "constant-velocity":
            return PoseFilter(lambda: ConstantVelocityFilter(self.alpha, self.cv_beta))
        return None


@dataclass
class TrackedFrame:
    """One frame of a track: the network's :class:`Result` and the (possibly filtered) pose.

    Attributes:
        index: frame number in the sequence.
        time_s: its time stamp (seconds).
        state: ``localised``, ``tracked``, ``relocalised``, ``lost`` or ``unreadable``.
        result: the per-frame result (raw network output), ``None`` for unreadable frames.
        quaternion, translation, rotation, ypr: the pose after the filter (the raw one without a filter);
            ``None`` when the frame has no pose.
    """

    index: int
    time_s: float
    state: str
    result: Result | None
    quaternion: np.ndarray | None = None
    translation: np.ndarray | None = None
    rotation: np.ndarray | None = None
    ypr: np.ndarray | None = None
    reason: str = ""


class Tracker:
    """Follows one head through a sequence of frames of one camera.

    Args:
        reconstructor: the networks.
        config: see :class:`TrackerConfig`.
    """

    def __init__(self, reconstructor: Reconstructor, config: TrackerConfig | None = None) -> None:
        self.rec = reconstructor
        self.config = config or TrackerConfig()
        self.filter = self.config.make_filter()
        self._centre: np.ndarray | None = None
        self._index = 0

    def reset(self) -> None:
        """Forget the head (the next frame is localised) and the filter's state."""
        self._centre = None
        if self.filter is not None:
            self.filter.reset()

    def step(self, depth: np.ndarray, intrinsics: Intrinsics, time_s: float | None = None,
             source: str | None = None) -> TrackedFrame:
        """Process the next frame (``(H, W)`` mm) taken at ``time_s`` (default: frame number / 30 s)."""
        index = self._index
        self._index += 1
        t = index / 30.0 if time_s is None else float(time_s)
        try:
            state, res = self._predict(depth, intrinsics, t, source)
        except InputError as e:
            return TrackedFrame(index, t, "unreadable", None, reason=str(e))
        if not res.found:
            self.reset()
            return TrackedFrame(index, t, "lost", res, reason=res.reason)
        self._centre = res.translation
        q, tr = res.quaternion, res.translation
        if self.filter is not None:
            q, tr = self.filter(q, tr, t)
        R = quaternion_to_matrix(torch.from_numpy(np.asarray(q, np.float64))).numpy()
        ypr = matrix_to_euler(torch.from_numpy(R)).numpy()
        return TrackedFrame(index, t, state, res, q, tr, R, ypr, res.reason)

    def _predict(self, depth: np.ndarray, k: Intrinsics, t: float, source: str | None) -> tuple[str, Result]:
        if self.config.track and self._centre is not None:
            centre = self._centre
            if self.filter is not None:
                ahead = self.filter.predict_translation(t)
                centre = centre if ahead is None else ahead
            steps = None if self.config.refine_when_tracking else 0
            res = self.rec.predict_batch([depth], k, [centre], [source], refine_steps=steps,
                                         centre_source="previous_frame")[0]
            if res.found:
                return "tracked", res
            state = "relocalised"
        else:
            state = "localised"
        return state, self.rec.predict_batch([depth], k, None, [source])[0]


# ------------------------------------------------------------------------------------------------
# sequences


@dataclass(frozen=True)
class SequenceFrame:
    """One frame of a sequence: a name, ``(H, W)`` float32 depth in mm, its camera and time (s)."""

    name: str
    depth: np.ndarray | None
    intrinsics: Intrinsics
    time_s: float
    error: str = ""  # why ``depth`` is None (an unreadable file)


def file_sequence(paths: list[str | Path], intrinsics: Intrinsics, fps: float = 30.0,
                  depth_scale: float = 1.0) -> Iterator[SequenceFrame]:
    """Depth files (or folders of them, sorted by name) as a sequence at ``fps`` frames per second.

    A frame whose size differs from the camera's is refused with a one-line message (scale a preset
    with ``Intrinsics.scaled`` or pass the camera's own intrinsics)."""
    from depthface.inference.io import collect_inputs, read_depth_file

    if not fps > 0:
        raise DepthfaceError(f"--fps must be positive, got {fps}")
    for i, fr in enumerate(collect_inputs(list(paths)).frames):
        k = fr.intrinsics or intrinsics
        try:
            if fr.problem is not None:  # known unreadable before reading (a FIFO, a dangling link, a bad depth.cal)
                raise InputError(fr.problem, fr.path)
            depth = read_depth_file(fr.path, depth_scale)
            if depth.shape != (k.height, k.width):
                raise InputError(f"frame is {depth.shape[1]}x{depth.shape[0]} but the camera is "
                                 f"{k.width}x{k.height}; pass the camera's intrinsics", fr.path)
        except InputError as e:
            yield SequenceFrame(fr.name, None, k, i / fps, str(e))
            continue
        yield SequenceFrame(fr.name, depth, k, i / fps)


def open_sequence(inputs: list[str | Path] | None, intrinsics: str = "kinect_v1", depth_scale: float = 1.0,
                  fps: float = 30.0, camera: str | None = None, max_frames: int | None = None) -> Iterator[SequenceFrame]:
    """The frames ``depthface track`` reads: files/folders, a RealSense ``.bag``, or a live camera.

    Args:
        inputs: depth files or folders (one sequence), or one RealSense recording (``.bag``/``.db3``);
            ``None`` with ``camera``.
        intrinsics: for files: a preset name, ``fx,fy,cx,cy`` or a Biwi ``depth.cal`` (bags and cameras
            carry their own).
        depth_scale: for files: multiply by this to get mm.
        fps: for files: the frame rate that sets their time stamps.
        camera: ``realsense`` for live frames from an attached camera.
        max_frames: stop after this many frames (default: all; 300 for a live camera).
    """
    from itertools import islice

    from depthface.geometry.camera import read_biwi_calibration

    inputs = list(inputs or [])
    if camera is not None:
        if inputs:
            raise DepthfaceError("give input files or --camera, not both")
        if camera != "realsense":
            raise DepthfaceError(f"unknown camera {camera!r}; only realsense")
        from depthface.inference.realsense import live_sequence

        frames: Iterator[SequenceFrame] = live_sequence()
        max_frames = 300 if max_frames is None else max_frames
    elif not inputs:
        raise DepthfaceError("nothing to track: give depth files, a folder, a .bag recording or --camera realsense")
    elif any(Path(p).suffix.lower() in (".bag", ".db3") for p in inputs):
        if len(inputs) != 1:
            raise DepthfaceError("a RealSense recording (.bag/.db3) is a sequence of its own: give it alone")
        from depthface.inference.realsense import bag_sequence

        frames = bag_sequence(inputs[0])
    else:
        k = (read_biwi_calibration(intrinsics).intrinsics if Path(intrinsics).is_file()
             else Intrinsics.parse(intrinsics))
        frames = file_sequence(inputs, k, fps, depth_scale)
    if max_frames is not None:
        if max_frames < 1:
            raise DepthfaceError(f"--max-frames must be at least 1, got {max_frames}")
        frames = islice(frames, max_frames)
    return frames


TRACK_COLUMNS = ["frame", "name", "time_s", "state", "found", "confidence", "flagged", "yaw_deg", "pitch_deg", "roll_deg",
                 "tx_mm", "ty_mm", "tz_mm", "raw_yaw_deg", "raw_pitch_deg", "raw_roll_deg", "raw_tx_mm", "raw_ty_mm",
                 "raw_tz_mm", "reason"]


def _row(name: str, f: TrackedFrame) -> dict:
    row = {"frame": f.index, "name": name, "time_s": round(f.time_s, 4), "state": f.state,
           "found": bool(f.result is not None and f.result.found), "reason": f.reason}
    res = f.result
    if res is not None:
        row["confidence"] = round(res.confidence, 4)
        row["flagged"] = bool(res.flagged)
    if f.ypr is not None:
        row.update({f"{a}_deg": round(float(v), 3) for a, v in zip(("yaw", "pitch", "roll"), f.ypr)})
        row.update({f"t{a}_mm": round(float(v), 2) for a, v in zip("xyz", f.translation)})
    if res is not None and res.ypr is not None:
        row.update({f"raw_{a}_deg": round(float(v), 3) for a, v in zip(("yaw", "pitch", "roll"), res.ypr)})
        row.update({f"raw_t{a}_mm": round(float(v), 2) for a, v in zip("xyz", res.translation)})
    return row


@dataclass
class TrackSummary:
    """What :func:`track_sequence` did: counts per state, the rows written, the files."""

    counts: dict[str, int]
    rows: list[dict]
    csv: Path | None
    video: Path | None
    seconds: float

    def line(self) -> str:
        """The one-line summary the CLI prints: frames, rate, counts per state, the files written."""
        n = sum(self.counts.values())
        return (f"{n} frame(s) in {self.seconds:.1f} s ({n / max(self.seconds, 1e-9):.1f} frames/s): "
                + ", ".join(f"{v} {k}" for k, v in self.counts.items() if v) + f"; wrote {self.csv}"
                + (f" and {self.video}" if self.video else ""))


def _video_writer(path: Path, fps: float):
    import imageio.v2 as imageio

    from depthface.inference.pictures import GifWriter

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return GifWriter(path, fps)
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise DepthfaceError("an MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or write a .gif",
                                 path) from None
        return imageio.get_writer(path, fps=fps, macro_block_size=1)
    raise DepthfaceError(f"unknown video type {suffix or '(none)'!r}; use .gif or .mp4", path)


def track_sequence(reconstructor: Reconstructor, frames: Iterable[SequenceFrame], config: TrackerConfig | None = None,
                   out: str | Path | None = None, video: str | Path | None = None, video_fps: float = 15.0,
                   video_every: int = 1, progress: Callable[[TrackedFrame], None] | None = None) -> TrackSummary:
    """Track a head through ``frames`` and write ``out/track.csv`` and optionally a GIF/MP4 of overlays.

    Args:
        reconstructor: the networks.
        frames: the sequence (e.g. :func:`file_sequence` or :func:`depthface.inference.realsense.bag_sequence`).
        config: the tracker's settings.
        out: folder for ``track.csv`` (``None``: no file, rows are returned).
        video: ``.gif`` or ``.mp4`` path for the overlays (``None``: none).
        video_fps: frames per second of the video.
        video_every: put every n-th frame in the video.
        progress: called with each tracked frame.

    Returns:
        A :class:`TrackSummary`.
    """
    import time

    from depthface.inference.pictures import overlay_image

    if video_every < 1:
        raise DepthfaceError(f"video_every must be at least 1, got {video_every}")
    tracker = Tracker(reconstructor, config)
    counts = {s: 0 for s in ("localised", "tracked", "relocalised", "lost", "unreadable")}
    rows: list[dict] = []
    writer = _video_writer(Path(video), video_fps) if video is not None else None
    t0 = time.perf_counter()
    try:
        for fr in frames:
            if fr.depth is None:
                f = TrackedFrame(tracker._index, fr.time_s, "unreadable", None, reason=fr.error)
                tracker._index += 1
            else:
                f = tracker.step(fr.depth, fr.intrinsics, fr.time_s, fr.name)
            counts[f.state] += 1
            rows.append(_row(fr.name, f))
            if writer is not None and fr.depth is not None and f.index % video_every == 0:
                res = f.result
                title = (f"{fr.name} {f.state}: yaw {f.ypr[0]:+.1f} pitch {f.ypr[1]:+.1f} roll {f.ypr[2]:+.1f} deg"
                         if f.ypr is not None else f"{fr.name} {f.state}")
                img = overlay_image(fr.depth, fr.intrinsics, None if res is None else res.vertices_camera,
                                    None if res is None else res.landmarks2d, f.rotation, f.translation, title)
                writer.append_data(img)
            if progress is not None:
                progress(f)
    finally:
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - t0
    csv_path = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        csv_path = out / "track.csv"
        with csv_path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, TRACK_COLUMNS)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in TRACK_COLUMNS})
    return TrackSummary(counts, rows, csv_path, None if video is None else Path(video), seconds)
