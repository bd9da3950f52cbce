"""Benchmark of the robust model fit (:mod:`depthface.facemodel.fit`): time per frame and what it recovers.

Frames: SynData1 scenes (FaceWarehouse-like: near-frontal, 20 expressions) of the default face model,
unseen identities (seed 1000), rendered clean or through the Kinect v1 simulator (hair, neck, torso,
background, noise). Each fit starts from the true pose perturbed by 8 deg (yaw/pitch/roll mixed) and
15 mm, a network-sized error, with the mean face. Rows:

* ``pose``: rigid only (the test-time pose refinement), the mean face;
* ``pose+shape``: pose, identity and expression (the 3DMM fit / the shape refinement).

Pairs: ``rays`` (the default: points binned by ray, :func:`depthface.facemodel.fit.ray_grid`) or ``kdtree``
(nearest point; one row, for comparison).

Points: ``full frame`` = the frame's points within 170 mm of the start head centre (what
``Reconstructor(refine=...)`` fits), ``crop`` = the stored 160 x 160 crop's position image (what
``eval pose/shape --refine`` on a stored dataset fits). Errors: shape RMS and eq. 8 in the narrow face
after nine-landmark alignment (:func:`depthface.evaluation.shape.shape_errors`), rotation error (geodesic
deg) and head-centre error (mm). Time: one thread (``OPENBLAS_NUM_THREADS=1``), the fit alone, per frame,
as CPU time of this process (what an idle core would take: on a shared machine the wall time is inflated
by the other processes) and as wall time; the machine's load average is recorded beside them.

Usage::

    python benchmarks/bench_fit.py --frames 40          # table + benchmarks/results/fit.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import write_report  # noqa: E402  (this folder is on sys.path)
from depthface.data.preprocess import preprocess  # noqa: E402
from depthface.evaluation.shape import shape_errors  # noqa: E402
from depthface.facemodel import load_face_model  # noqa: E402
from depthface.facemodel.fit import fit_frame, prepare_fit_region  # noqa: E402
from depthface.geometry.camera import depth_to_points, position_points  # noqa: E402
from depthface.geometry.rotations import euler_to_matrix, geodesic_angle_deg  # noqa: E402
from depthface.synth.profiles import get_profile  # noqa: E402
from depthface.synth.scenes import SceneSampler  # noqa: E402
from depthface.synth.sensor import SensorProfile  # noqa: E402
from depthface.synth.storage import render_frame  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "fit.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--iterations", type=int, nargs="+", default=[10],
                    help="joint iterations of the pose+shape rows (the default 10; more values add full-frame "
                         "rows: the speed / accuracy trade-off)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_face_model()
    m64 = model.to(dtype=torch.float64)
    region = prepare_fit_region(model)
    warm = np.random.default_rng(0).normal(size=(500, 3)) * 50.0 + [0.0, 0.0, 800.0]  # load the compiled kernels
    fit_frame(warm, region, np.eye(3), np.array([0.0, 0.0, 800.0]), mode="pose", rigid_iterations=1)
    sampler = SceneSampler(model, get_profile("syndata1"), args.seed)
    rng = np.random.default_rng(0)
    rows = []
    load = [os.getloadavg()[0]]
    for sensor_name in ("clean", "kinect_v1"):
        sensor = None if sensor_name == "clean" else SensorProfile.preset(sensor_name)
        stats: dict[tuple[str, str], dict[str, list]] = {}
        for f in range(args.frames):
            index = int(rng.integers(0, 9000))
            frame, scene, _ = render_frame(sampler, sensor, args.seed, index, full=True)
            k = sampler.profile.intrinsics
            full = depth_to_points(torch.from_numpy(frame.astype(np.float32)), k).double().numpy()
            crop = position_points(preprocess(frame, k, scene.crop_centre).position[None])[0].double().numpy()
            true = m64.vertices(torch.from_numpy(scene.identity)[None], torch.from_numpy(scene.expression)[None])
            axis = rng.normal(size=3)
            dR = euler_to_matrix(torch.from_numpy(8.0 * axis / np.linalg.norm(axis))).numpy()
            dt = rng.normal(size=3)
            R0, t0 = dR @ scene.rotation, scene.translation + 15.0 * dt / np.linalg.norm(dt)
            runs = [("full frame", full, "pose", "rays", 10), ("full frame", full, "pose+shape", "rays", 10),
                    ("full frame", full, "pose+shape", "kdtree", 10), ("crop", crop, "pose", "rays", 10),
                    ("crop", crop, "pose+shape", "rays", 10)]
            runs += [("full frame", full, "pose+shape", "rays", n) for n in args.iterations if n != 10]
            for points_name, pts, mode, search, iterations in runs:
                t1, c1 = time.perf_counter(), time.process_time()
                res = fit_frame(pts, region, R0, t0, mode=mode, search=search, iterations=iterations)
                if iterations != 10:
                    mode = f"{mode}, {iterations} joint it."
                secs, cpu = time.perf_counter() - t1, time.process_time() - c1
                e = shape_errors(m64, torch.from_numpy(res.vertices).double()[None], true)[0]
                s = stats.setdefault((points_name, mode, search), {k_: [] for k_ in ("ms", "cpu", "rms", "eq8", "deg", "mm")})
                s["ms"].append(1e3 * secs)
                s["cpu"].append(1e3 * cpu)
                s["rms"].append(e["rms_mm"])
                s["eq8"].append(e["mean_squared_mm2"])
                s["deg"].append(geodesic_angle_deg(torch.from_numpy(res.R), torch.from_numpy(scene.rotation)).item())
                s["mm"].append(float(np.linalg.norm(res.t - scene.translation)))
        mean_rms = np.mean([shape_errors(m64, m64.mean[None], m64.vertices(
            torch.from_numpy(sampler.scene(int(i)).identity)[None],
            torch.from_numpy(sampler.scene(int(i)).expression)[None]))[0]["rms_mm"] for i in range(0, 9000, 300)])
        for (points_name, mode, search), s in stats.items():
            rows.append({"frames": sensor_name, "points": points_name, "mode": mode, "search": search, "n": len(s["ms"]),
                         "ms_median": float(np.median(s["ms"])), "ms_p90": float(np.quantile(s["ms"], 0.9)),
                         "cpu_ms_median": float(np.median(s["cpu"])), "cpu_ms_p90": float(np.quantile(s["cpu"], 0.9)),
                         "rms_mm": float(np.mean(s["rms"])), "rms_mm_median": float(np.median(s["rms"])),
                         "eq8_mm2": float(np.mean(s["eq8"])), "rotation_deg": float(np.mean(s["deg"])),
                         "rotation_deg_p90": float(np.quantile(s["deg"], 0.9)), "centre_mm": float(np.mean(s["mm"])),
                         "mean_face_rms_mm": float(mean_rms)})
        load.append(os.getloadavg()[0])
    lines = ["| frames | points | mode | pairs | CPU ms/frame (median, p90) | wall ms (median) | shape RMS mm (mean, median) | eq. 8 mm² | "
             "rotation deg (mean, p90) | centre mm |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['frames']} | {r['points']} | {r['mode']} | {r['search']} | {r['cpu_ms_median']:.0f}, {r['cpu_ms_p90']:.0f} | "
                     f"{r['ms_median']:.0f} | "
                     f"{r['rms_mm']:.2f}, {r['rms_mm_median']:.2f} | {r['eq8_mm2']:.2f} | "
                     f"{r['rotation_deg']:.2f}, {r['rotation_deg_p90']:.2f} | {r['centre_mm']:.1f} |")
    print("\n".join(lines))
    print(f"start: 8 deg / 15 mm off the truth, the mean face; mean face RMS {rows[0]['mean_face_rms_mm']:.2f} mm; "
          f"load average {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    write_report(args.out, {"frames_per_row": args.frames, "seed": args.seed, "rows": rows, "load_average": load,
                            "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                            "threads": 1, "command": f"python benchmarks/bench_fit.py --frames {args.frames} "
                                                     f"--iterations {' '.join(map(str, args.iterations))}"})


if __name__ == "__main__":
    main()
