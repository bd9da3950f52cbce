"""Benchmark of the automatic head localiser (:mod:`depthface.data.localize`) against known head centres.

Frames: syndata2 scenes (Biwi-like poses and distances, the Biwi camera) of the default face model,
rendered and passed through the Kinect v1 simulator over the **full frame** (hair, neck and torso, a
background wall and boxes, sensor noise, shadows and holes; ``simulate_kinect(..., window_mm=None)``).
The ground truth is each scene's head centre ``t``. Rows:

* ``clean render``: the rendered face model alone (the synthetic source domain; no hair or body);
* ``simulated Kinect``: the full simulated frames;
* ``Biwi layout``: the same simulated frames written as a Biwi dataset (``depthface.data.export``,
  ``write_biwi_frame``) and read back with ``BiwiDataset`` (depth and camera from the files);
* ``no person`` (negatives): wall and boxes only, through the same sensor model: any head found there
  is a false detection.

``ms/frame`` is the time of :func:`localize_head` alone (fastest of 3 runs per frame, one thread).
Frames where no head is found count as misses in the "within" columns and are listed separately
(never dropped). ``--calibrate`` fits the centre offsets ``a, b`` of ``LocalizerConfig``
(``behind_surface_mm``, ``below_centroid_mm``) on frames of another seed and prints them.

Usage::

    python benchmarks/bench_localize.py --frames 500            # table + benchmarks/results/localize.json
    python benchmarks/bench_localize.py --calibrate --frames 500
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from _common import python_and_processor, write_report  # (this folder is on sys.path)
from depthface.data.biwi import BiwiDataset
from depthface.data.export import ExportFrame, export_frames
from depthface.data.localize import LocalizerConfig, localize_head
from depthface.facemodel import load_face_model
from depthface.geometry.camera import Intrinsics
from depthface.synth.profiles import get_profile
from depthface.synth.render import render_depth
from depthface.synth.scenes import SceneSampler
from depthface.synth.sensor import SensorProfile, apply_sensor, box_meshes, sample_wall, simulate_kinect
from depthface.synth.storage import STREAM_SENSOR

#: categories of the localiser's reasons (first rejected region), for the table
REASONS = ("no depth between", "no surface larger than", "wide at its top", "curved across", "curved vertically",
           "two planes", "too few samples", "head-sized top with only")
RESULTS = Path(__file__).resolve().parent / "results" / "localize.json"


def scene_frames(n: int, seed: int, sensor: SensorProfile | None, profile: str = "syndata2"):
    """Yield ``(index, depth uint16 (H, W), R (3, 3), t (3,), identity)`` of ``n`` scenes of ``profile``.

    With ``sensor`` the frame is simulated over the full image; the sensor's random stream is the one
    :mod:`depthface.synth.storage` uses for sample ``index``.
    """
    prof = get_profile(profile)
    sampler = SceneSampler(load_face_model(), prof, seed)
    K = prof.intrinsics
    for i in range(n):
        scene = sampler.scene(i)
        depth = render_depth(*sampler.render_mesh(scene), K)
        if sensor is not None:
            rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_SENSOR, i]))
            depth = simulate_kinect(depth, scene.rotation, scene.translation, K, rng, sensor, window_mm=None,
                                    head_vertices=sampler.head_vertices(scene))
        frame = np.clip(np.rint(depth), 0, 65535).astype(np.uint16)
        yield i, frame, scene.rotation, scene.translation, scene.identity_id


def background_frame(rng: np.random.Generator, K: Intrinsics, sensor: SensorProfile) -> np.ndarray:
    """A frame with no person: a wall (always) and 1-3 boxes, through the sensor model. ``(H, W)`` uint16."""
    prof = replace(sensor, wall_probability=1.0, box_count=(1, 3))
    fake_head = np.array([0.0, 0.0, rng.uniform(700, 1300)])  # where a head would be: sets the wall's gap
    wall = sample_wall(fake_head, rng, prof)
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    den = wall[0] * (u - K.cx) / K.fx + wall[1] * (v - K.cy) / K.fy + wall[2]
    depth = np.where(den != 0, wall[3] / np.where(den != 0, den, 1), 0).astype(np.float32)
    depth[depth < 0] = 0
    bv, bt = box_meshes(fake_head - [0, 0, 300], K, rng, float(wall[3] / wall[2]), prof)
    if len(bt):
        boxes = render_depth(bv, bt, K)
        depth = np.where((boxes > 0) & ((depth == 0) | (boxes < depth)), boxes, depth)
    return apply_sensor(depth, K, rng, sensor)


def run_rows(frames, cfg: LocalizerConfig) -> dict:
    """Localise every frame; ``frames`` yields ``(depth, intrinsics, truth t or None)``."""
    errors, times, misses, reasons, centroids, truths = [], [], 0, {}, [], []
    for depth, K, t in frames:
        runs = []
        for _ in range(3):  # the fastest of 3 runs: the cost of the frame, not of a busy machine
            t0 = time.perf_counter()
            loc = localize_head(depth, K, cfg)
            runs.append(time.perf_counter() - t0)
        times.append(min(runs))
        if loc.centre is None:
            misses += 1
            key = next((c for c in REASONS if c in loc.reason.split(";")[0]), loc.reason)
            reasons[key] = reasons.get(key, 0) + 1
            errors.append(np.inf)
            continue
        if t is not None:
            errors.append(float(np.linalg.norm(loc.centre - t)))
            centroids.append(loc.surface_centroid)
            truths.append(t)
        else:
            errors.append(np.nan)
    return {"errors": np.array(errors), "times": np.array(times), "misses": misses, "reasons": reasons,
            "centroids": np.array(centroids), "truths": np.array(truths)}


def summarise(name: str, r: dict, negative: bool = False) -> dict:
    e = r["errors"]
    n = len(e)
    found = e[np.isfinite(e)] if not negative else e[~np.isinf(e)]
    row = {"frames": n, "no_head_found": r["misses"], "no_head_reasons": r["reasons"],
           "time_ms_median": round(1e3 * float(np.median(r["times"])), 2),
           "time_ms_p95": round(1e3 * float(np.percentile(r["times"], 95)), 2)}
    if negative:
        row["false_detections"] = int(n - r["misses"])
    else:
        row.update({
            "within_20mm": round(float(np.mean(e < 20)), 4),
            "within_50mm": round(float(np.mean(e < 50)), 4),
            "median_error_mm": round(float(np.median(found)), 1) if len(found) else None,
            "p95_error_mm": round(float(np.percentile(found, 95)), 1) if len(found) else None,
            "max_error_mm": round(float(np.max(found)), 1) if len(found) else None,
        })
    return {"name": name, **row}


def fit_offsets(centroids: np.ndarray, truths: np.ndarray) -> tuple[float, float]:
    """Least-squares ``a, b`` of ``t = c + a c / |c| + b (0, 1, 0)``."""
    ray = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    A = np.stack([ray, np.broadcast_to([0.0, 1.0, 0.0], ray.shape)], axis=-1)  # (n, 3, 2)
    sol, *_ = np.linalg.lstsq(A.reshape(-1, 2), (truths - centroids).reshape(-1), rcond=None)
    return float(sol[0]), float(sol[1])


def print_table(rows: list[dict]) -> None:
    head = (f"{'frames':<32} {'n':>5} {'<20 mm':>7} {'<50 mm':>7} {'median':>7} {'p95':>7} {'no head':>8}"
            "  ms/frame med/p95")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "false_detections" in r:
            print(f"{r['name']:<32} {r['frames']:>5} {'':>7} {'':>7} {'':>7} {'':>7} {r['no_head_found']:>8}  "
                  f"{r['time_ms_median']:>5.1f} / {r['time_ms_p95']:<5.1f}  false detections: {r['false_detections']}")
        else:
            print(f"{r['name']:<32} {r['frames']:>5} {100 * r['within_20mm']:>6.1f}% {100 * r['within_50mm']:>6.1f}% "
                  f"{r['median_error_mm']:>7} {r['p95_error_mm']:>7} {r['no_head_found']:>8}  "
                  f"{r['time_ms_median']:>5.1f} / {r['time_ms_p95']:<5.1f}")
    for r in rows:
        if r["no_head_reasons"]:
            print(f"  {r['name']}: no head found in {r['no_head_found']}, first rejection: {r['no_head_reasons']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=500, help="scenes per row")
    ap.add_argument("--negatives", type=int, default=100, help="frames without a person")
    ap.add_argument("--seed", type=int, default=0, help="scene seed of the benchmark frames")
    ap.add_argument("--calibrate", action="store_true", help="fit the centre offsets on frames of --calibration-seed")
    ap.add_argument("--calibration-seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results")
    args = ap.parse_args(argv)
    sensor = SensorProfile.preset("kinect_v1")
    cfg = LocalizerConfig()
    K = get_profile("syndata2").intrinsics

    if args.calibrate:
        r = run_rows(((d, K, t) for _, d, _, t, _ in scene_frames(args.frames, args.calibration_seed, sensor)),
                     replace(cfg, behind_surface_mm=0.0, below_centroid_mm=0.0))
        a, b = fit_offsets(r["centroids"], r["truths"])
        print(f"calibrated on {len(r['truths'])} simulated Kinect frames (seed {args.calibration_seed}): "
              f"behind_surface_mm = {a:.1f}, below_centroid_mm = {b:.1f}")
        return 0

    t0 = time.perf_counter()
    localize_head(np.full((K.height, K.width), 1000, np.uint16), K)  # compile the kernels before timing
    rows = []
    r_clean = run_rows(((d, K, t) for _, d, _, t, _ in scene_frames(args.frames, args.seed, None)), cfg)
    rows.append(summarise("clean render (head only)", r_clean))
    with tempfile.TemporaryDirectory() as tmp:
        kinect = []
        frames = []
        for i, d, R, t, ident in scene_frames(args.frames, args.seed, sensor):
            kinect.append((d, K, t))
            frames.append(ExportFrame(d, R, t, ident, i))
        rows.append(summarise("simulated Kinect (full frame)", run_rows(iter(kinect), cfg)))
        export_frames(Path(tmp) / "biwi", frames, "biwi", K)
        ds = BiwiDataset(Path(tmp) / "biwi")
        biwi = ((f.depth, f.intrinsics, f.translation) for f in ds)
        rows.append(summarise("Biwi layout (exported, read back)", run_rows(biwi, cfg)))
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 99]))
    negatives = ((background_frame(rng, K, sensor), K, None) for _ in range(args.negatives))
    rows.append(summarise("no person (wall + boxes)", run_rows(negatives, cfg), negative=True))
    print_table(rows)
    result = {
        "command": "python benchmarks/bench_localize.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "profile": "syndata2", "sensor": "kinect_v1 (full frame)", "seed": args.seed,
        "localizer_config": asdict(cfg), "rows": rows,
        "machine": python_and_processor(), "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    write_report(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
