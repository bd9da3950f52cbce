"""Intel RealSense input through ``pyrealsense2`` (the optional extra ``pip install 'depthface[realsense]'``).

* :func:`bag_sequence`: a recording as a sequence of depth frames. librealsense 2.59's recorder writes
  ROS 2 ``.db3`` files (older SDKs wrote ROS 1 ``.bag``); both are opened the same way, with playback
  not in real time, so no frame is dropped.
* :func:`live_sequence`: frames from an attached camera (its default depth mode unless a size is given).

Both read the camera's own intrinsics (fx, fy, ppx, ppy of the depth stream) and depth scale (metres per
unit, e.g. 0.001 for D400 cameras, 0.00025 for the L515) from the device or file, and yield
:class:`depthface.inference.tracking.SequenceFrame` with depth in millimetres and time stamps in
seconds from the first frame. Lens distortion is not modelled: D400 depth streams are rectified (no
distortion); an L515's small distortion is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from depthface.errors import DepthfaceError, InputError
from depthface.geometry.camera import Intrinsics
from depthface.inference.tracking import SequenceFrame

__all__ = ["bag_sequence", "live_sequence", "stream_intrinsics", "RECORDING_SUFFIXES"]

#: recordings :func:`bag_sequence` opens
RECORDING_SUFFIXES = (".bag", ".db3")


def _rs():
    """The ``pyrealsense2`` module, or a one-line error naming the extra to install."""
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        why = "" if "pyrealsense2" in str(e) else f" ({e})"
        raise DepthfaceError("RealSense input needs pyrealsense2: pip install 'depthface[realsense]'" + why) from None
    return rs


def stream_intrinsics(profile) -> Intrinsics:
    """:class:`Intrinsics` of a ``pyrealsense2`` video stream profile (its ``fx, fy, ppx, ppy``, size)."""
    i = profile.as_video_stream_profile().get_intrinsics()
    return Intrinsics(float(i.fx), float(i.fy), float(i.ppx), float(i.ppy), int(i.width), int(i.height))


def _frames(rs, pipe, scale_mm: float, name: str) -> Iterator[SequenceFrame]:
    """Depth frames of a started camera pipeline (until the caller stops)."""
    t0 = None
    misses = 0
    try:
        while True:
            ok, frames = pipe.try_wait_for_frames(200)
            if not ok:
                misses += 1
                if misses > 25:
                    raise DepthfaceError(f"{name}: no depth frame for 5 s")
                continue
            misses = 0
            depth = frames.get_depth_frame()
            if not depth:
                continue
            t = depth.get_timestamp() / 1000.0
            t0 = t if t0 is None else t0
            arr = np.asanyarray(depth.get_data()).astype(np.float32) * np.float32(scale_mm)
            yield SequenceFrame(f"{name}#{depth.get_frame_number()}", arr, stream_intrinsics(depth.get_profile()),
                                t - t0)
    finally:
        pipe.stop()


def _playback_frames(rs, device, sensor, profile, scale_mm: float, name: str) -> Iterator[SequenceFrame]:
    """Every depth frame of a recording, in order. Playback is not in real time and the callback blocks
    while the small queue is full, so the file is read no faster than the frames are used and none is lost."""
    import queue
    import threading

    frames: queue.Queue = queue.Queue(maxsize=8)
    closing = threading.Event()
    k = stream_intrinsics(profile)

    def on_frame(f) -> None:
        item = (f.get_frame_number(), f.get_timestamp() / 1000.0,
                np.asanyarray(f.get_data()).astype(np.float32) * np.float32(scale_mm))
        while not closing.is_set():  # wait for room (back-pressure), unless the reader has stopped
            try:
                frames.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    playback = device.as_playback()
    playback.set_real_time(False)
    sensor.open(profile)
    sensor.start(on_frame)
    t0 = None
    try:
        while True:
            try:
                number, t, arr = frames.get(timeout=0.05)
            except queue.Empty:
                if playback.current_status() == rs.playback_status.stopped and frames.empty():
                    return
                continue
            t0 = t if t0 is None else t0
            yield SequenceFrame(f"{name}#{number}", arr, k, t - t0)
    finally:
        closing.set()  # a waiting callback returns, so the sensor can stop
        try:
            sensor.stop()
            sensor.close()
        except RuntimeError:
            pass


def bag_sequence(path: str | Path) -> Iterator[SequenceFrame]:
    """The depth frames of a RealSense recording (``.bag`` or ``.db3``), intrinsics and depth scale from the file.

    Raises:
        InputError: a missing or unreadable file, or one without a depth stream.
        DepthfaceError: ``pyrealsense2`` is not installed.
    """
    path = Path(path)
    if path.suffix.lower() not in RECORDING_SUFFIXES:
        raise InputError(f"not a RealSense recording (expected {' or '.join(RECORDING_SUFFIXES)})", path)
    if not path.is_file():
        raise InputError("file not found", path)
    rs = _rs()
    try:
        device = rs.context().load_device(str(path))
    except RuntimeError as e:
        raise InputError(f"cannot open the recording ({' '.join(str(e).split())[:120]})", path) from None
    for sensor in device.query_sensors():
        depth = [p for p in sensor.get_stream_profiles() if p.stream_type() == rs.stream.depth]
        if depth and sensor.is_depth_sensor():
            scale = sensor.as_depth_sensor().get_depth_scale()
            return _playback_frames(rs, device, sensor, depth[0], 1000.0 * scale, path.name)
    raise InputError("the recording has no depth stream", path)


def live_sequence(width: int | None = None, height: int | None = None, fps: int = 30) -> Iterator[SequenceFrame]:
    """Depth frames from the first attached RealSense camera (its default depth mode, or ``width`` x
    ``height`` at ``fps``); intrinsics and depth scale from the device.

    Raises:
        DepthfaceError: no camera attached, or ``pyrealsense2`` not installed.
    """
    rs = _rs()
    if len(rs.context().query_devices()) == 0:
        raise DepthfaceError("no RealSense camera attached (pyrealsense2 found no device)")
    pipe, cfg = rs.pipeline(), rs.config()
    if width is not None and height is not None:
        cfg.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
    else:
        cfg.enable_stream(rs.stream.depth)
    try:
        profile = pipe.start(cfg)
    except RuntimeError as e:
        raise DepthfaceError(f"cannot start the RealSense camera ({' '.join(str(e).split())[:120]})") from None
    scale = profile.get_device().first_depth_sensor().get_depth_scale()
    return _frames(rs, pipe, 1000.0 * scale, "realsense")


def write_recording(path: str | Path, frames: list[np.ndarray], intrinsics: Intrinsics, depth_scale: float = 0.001,
                    fps: int = 30) -> Path:
    """Record uint16 depth frames (sensor units) into a RealSense recording with the SDK's software device
    and recorder (librealsense 2.59 writes ``.db3``): test data and a way to turn arrays into a file that
    :func:`bag_sequence` reads like a camera's.

    Args:
        path: the output file (the suffix the installed SDK's recorder accepts).
        frames: ``(H, W)`` uint16 arrays in units of ``depth_scale`` metres.
        intrinsics: the depth stream's camera (its size must match the frames).
        depth_scale: metres per unit.
        fps: frame rate (time stamps ``i / fps``).
    """
    import time

    rs = _rs()
    path = Path(path)
    w, h = intrinsics.width, intrinsics.height
    dev = rs.software_device()
    sensor = dev.add_sensor("Depth")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.ppx, intr.ppy = w, h, intrinsics.cx, intrinsics.cy
    intr.fx, intr.fy, intr.model, intr.coeffs = intrinsics.fx, intrinsics.fy, rs.distortion.none, [0.0] * 5
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height = rs.stream.depth, 0, 0, w, h
    vs.fps, vs.bpp, vs.fmt, vs.intrinsics = fps, 2, rs.format.z16, intr
    profile = sensor.add_video_stream(vs)
    sensor.add_read_only_option(rs.option.depth_units, float(depth_scale))
    try:
        recorder = rs.recorder(str(path), dev)
    except RuntimeError as e:
        raise DepthfaceError(f"the RealSense recorder refused the file ({e})", path) from None
    queue = rs.frame_queue(len(frames) + 1)
    sensor.open(profile)
    sensor.start(queue)
    for i, arr in enumerate(frames):
        a = np.ascontiguousarray(arr, dtype=np.uint16)
        if a.shape != (h, w):
            raise InputError(f"frame {i} is {a.shape[1]}x{a.shape[0]}, the stream {w}x{h}", path)
        f = rs.software_video_frame()
        f.pixels, f.stride, f.bpp = a, 2 * w, 2
        f.timestamp, f.domain, f.frame_number = i * 1000.0 / fps, rs.timestamp_domain.hardware_clock, i
        f.profile = profile.as_video_stream_profile()
        sensor.on_video_frame(f)
    time.sleep(0.1)
    sensor.stop()
    sensor.close()
    del recorder
    return path
