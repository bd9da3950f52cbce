"""Benchmark of the synthetic-frame pipeline: head render, scene context, Kinect sensor effects.

Median milliseconds per 640x480 frame over random head poses (yaw +-75 deg, pitch +-45 deg, roll +-20 deg,
0.7-1.3 m) of the ICT head (22,288 triangles), single thread; each frame's stage is run ``--repeats`` times
(same inputs, same seed) and its fastest run kept, which filters out interference from other processes on
a shared machine (the load average is recorded). Stages:

* ``render_head``: :func:`depthface.synth.render.render_depth` of the head, full frame (and in a window);
* ``scene_context``: :func:`depthface.synth.sensor.add_scene_context` (hair, neck, torso, wall, boxes);
* ``sensor_effects``: :func:`depthface.synth.sensor.apply_sensor`;
* ``simulate_kinect``: both, as the data generator calls it;

each in the default head window (:data:`DEFAULT_WINDOW_MM`, 340 mm) and on the full frame; then complete
samples per second of the whole generator in one process (``generate``: scene, render, sensor, crop, labels,
chunk writing) for clean, ``kinect_v1``, ``tof_kinect_v2`` and ``kinect_v1_random`` frames -- and, with
``--before DIR``, for clean and ``kinect_v1`` with an older package in the same run (runs interleaved, the
best of ``--e2e-repeats`` kept, so that a drifting machine load hits both alike).

    git archive e6d257f depthface | tar -x -C /tmp/before      # the code before the issue-15 speed-ups
    python benchmarks/bench_synth_render.py --frames 50 --before /tmp/before --out benchmarks/results/render.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from depthface.facemodel.loaders import PACKAGED_MODEL
from depthface.geometry.camera import Intrinsics
from depthface.synth.render import render_depth
from depthface.synth.sensor import (DEFAULT_WINDOW_MM, KINECT_V1, _rotation, add_scene_context, apply_sensor,
                                    head_window,
                                    sensor_input_window, simulate_kinect)


def load_head(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """ICT mean head in the head frame (mm): ``(V, 3)``, ``(T, 3)``."""
    m = np.load(path)
    v = m["mean"].astype(np.float64) * 10.0 * np.array([1.0, -1.0, -1.0])
    centre = v[m["landmarks68"][[36, 39, 42, 45]]].mean(0) + np.array([0.0, 0.0, 90.0])
    return v - centre, m["triangles"].astype(np.int32)


REPEATS = 3

_E2E = """
import sys, tempfile, time
from pathlib import Path
from depthface.facemodel import load_face_model
from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import generate
name, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
m = load_face_model(model)
sensor = None if name == "clean" else SensorProfile.preset(name)
with tempfile.TemporaryDirectory() as tmp:
    generate(Path(tmp) / "warm", get_profile("syndata2").scaled(count=8), 1, m, sensor, chunk_size=8, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    generate(Path(tmp) / "d", get_profile("syndata2").scaled(count=n), 0, m, sensor, progress=False)
    print(n / (time.perf_counter() - t0), n / (time.process_time() - c0))
"""


def e2e_rate(tree: str, sensor: str, frames: int, model: Path | None) -> tuple[float, float]:
    """Complete samples per second of ``generate`` (syndata2, one process) with the package in ``tree``,
    in a fresh interpreter (numba's cache warmed by a first small dataset): per wall-clock second and per
    CPU second of the process (what one process makes on a core it has to itself; on a shared machine the
    wall-clock rate falls with the load, the CPU rate much less)."""
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, "-c", _E2E, sensor, str(frames), "" if model is None else str(model)],
                         env=env, capture_output=True, text=True, check=True)
    wall, cpu = (float(x) for x in out.stdout.strip().splitlines()[-1].split())
    return wall, cpu


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """Fastest of ``REPEATS`` runs (ms) and the result. Generators in ``args`` are re-seeded per run."""
    best, out = np.inf, None
    for _ in range(REPEATS):
        a = [np.random.default_rng(x.seed) if isinstance(x, _Seeded) else x for x in args]
        t0 = time.perf_counter()
        out = fn(*a, **kwargs)
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best, out


class _Seeded:
    """A seed that :func:`timed` turns into a fresh generator for every run."""

    def __init__(self, seed: list[int]) -> None:
        self.seed = seed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--e2e-frames", type=int, default=512, help="frames generated end to end per profile")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs per frame and stage; the fastest is kept")
    ap.add_argument("--model", type=Path, default=None, help="face model (default: the packaged one)")
    ap.add_argument("--e2e-repeats", type=int, default=2, help="interleaved end-to-end runs per tree; best kept")
    ap.add_argument("--before", type=Path, default=None,
                    help="a tree holding an older depthface package to time end to end in the same run, e.g. made "
                         "by `git archive e6d257f depthface | tar -x -C /tmp/before`")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/render.json"))
    args = ap.parse_args()
    global REPEATS
    REPEATS = max(1, args.repeats)

    K = Intrinsics.preset("kinect_v1")
    V, T = load_head(args.model or PACKAGED_MODEL)
    rng = np.random.default_rng(args.seed)
    poses = []
    for _ in range(args.frames):
        R = _rotation(rng.uniform(-75, 75), rng.uniform(-45, 45), rng.uniform(-20, 20))
        t = np.array([rng.uniform(-150, 150), rng.uniform(-100, 100), rng.uniform(700, 1300)])
        poses.append((R, t))

    # warm up (numba compilation / cache load)
    R, t = poses[0]
    clean = render_depth(V @ R.T + t, T, K)
    simulate_kinect(clean, R, t, K, np.random.default_rng(0))
    simulate_kinect(clean, R, t, K, np.random.default_rng(0), window_mm=None)

    stages: dict[str, list[float]] = {k: [] for k in (
        "render_head", "render_head_window", "scene_context", "sensor_effects", "simulate_kinect",
        "scene_context_full", "sensor_effects_full", "simulate_kinect_full")}
    pixels: list[int] = []
    for i, (R, t) in enumerate(poses):
        verts = V @ R.T + t
        ms, clean = timed(render_depth, verts, T, K)
        stages["render_head"].append(ms)
        win = head_window(t, K)
        ms, _ = timed(render_depth, verts, T, K, window=sensor_input_window(win, K))
        stages["render_head_window"].append(ms)
        pixels.append((win[2] - win[0]) * (win[3] - win[1]))
        for suffix, w in (("", win), ("_full", None)):
            seed = _Seeded([args.seed, i])
            scene_win = sensor_input_window(w, K)
            ms, (scene, labels) = timed(add_scene_context, clean, R, t, K, seed, KINECT_V1, window=scene_win,
                                        return_labels=True)
            stages["scene_context" + suffix].append(ms)
            ms, _ = timed(apply_sensor, scene, K, seed, KINECT_V1, labels=labels, window=w)
            stages["sensor_effects" + suffix].append(ms)
            ms, _ = timed(simulate_kinect, clean, R, t, K, seed, window_mm=None if w is None else DEFAULT_WINDOW_MM)
            stages["simulate_kinect" + suffix].append(ms)

    # metric crop of a full frame, and the whole generator end to end (render, sensor, crop, labels, write)
    from depthface.synth.scenes import crop_sample

    frame16 = np.clip(np.rint(clean), 0, 65535).astype(np.uint16)
    stages["metric_crop"] = [timed(crop_sample, frame16, K, t)[0] for _ in range(args.frames)]
    trees = {"after": str(Path(__file__).resolve().parents[1])}
    if args.before is not None:
        trees["before"] = str(args.before)
    e2e: dict[str, dict[str, float]] = {}
    e2e_cpu: dict[str, dict[str, float]] = {}
    for name in ("clean", "kinect_v1", "tof_kinect_v2", "kinect_v1_random"):
        for _ in range(args.e2e_repeats):  # interleaved, best kept: the machine's load drifts
            for tree, path in trees.items():
                if tree == "before" and name not in ("clean", "kinect_v1"):
                    continue
                wall, cpu = e2e_rate(path, name, args.e2e_frames, args.model)
                for table, rate in ((e2e, wall), (e2e_cpu, cpu)):
                    row = table.setdefault(tree, {})
                    row[name] = max(row.get(name, 0.0), rate)

    result = {
        "generate_samples_per_s_one_process": e2e["after"],
        "generate_samples_per_s_one_process_before": e2e.get("before"),
        "generate_samples_per_cpu_s_one_process": e2e_cpu["after"],
        "generate_samples_per_cpu_s_one_process_before": e2e_cpu.get("before"),
        "e2e_frames": args.e2e_frames, "e2e_repeats": args.e2e_repeats,
        "before_tree": None if args.before is None else str(args.before),
        "frames": args.frames, "resolution": [K.width, K.height], "triangles": int(len(T)),
        "poses": "yaw U(-75,75), pitch U(-45,45), roll U(-20,20) deg; z U(700,1300) mm; x,y +-150/+-100 mm",
        "window": f"{DEFAULT_WINDOW_MM:.0f} mm square around the head centre",
        "median_window_pixels": float(np.median(pixels)),
        "repeats_per_frame": REPEATS,
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]},
        "median_ms": {k: float(np.median(v)) for k, v in stages.items()},
        "p90_ms": {k: float(np.percentile(v, 90)) for k, v in stages.items()},
    }
    full = result["median_ms"]["render_head"] + result["median_ms"]["simulate_kinect"]
    result["median_ms_per_sample_window"] = full
    print(f"{args.frames} frames 640x480, ICT head {len(T)} triangles, "
          f"window median {result['median_window_pixels']:.0f} px")
    print(f"{'stage':24s} {'median ms':>10s} {'p90 ms':>10s}")
    for k in stages:
        print(f"{k:24s} {result['median_ms'][k]:10.3f} {result['p90_ms'][k]:10.3f}")
    print(f"{'render + simulate (win)':24s} {full:10.3f}   -> {1000 / full:.0f} samples/s/core")
    print(f"complete samples/s, one process (render, sensor, crop, labels, write; {args.e2e_frames} frames, best "
          f"of {args.e2e_repeats}):")
    print(f"{'':24s} " + " ".join(f"{n:>16s}" for n in e2e["after"]))
    for label, table in (("per wall s", e2e), ("per CPU s", e2e_cpu)):
        for tree, row in table.items():
            print(f"{tree + ', ' + label:24s} " + " ".join(f"{row.get(n, float('nan')):16.0f}" for n in e2e["after"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
