"""Tracking: jitter on a static head and speed, with and without tracking and filters.

A static head: one syndata2 scene rendered through the Kinect v1 simulator over the full frame with a
new sensor-noise draw per frame (the scene, pose and camera stay fixed), ``--frames`` frames for each of
``--heads`` scenes, 30 frames/s time stamps. Every configuration runs over the same frames:

* ``per-frame``: no tracking, the head localised and the crop refined on every frame (``predict``'s path);
* ``tracked``: the previous head sets the crop, one pose pass per frame (localisation on the first frame);
* ``tracked + one-euro`` / ``tracked + constant-velocity``: the same with the filter on the output pose.

Jitter = the frame-to-frame change of the output: rotation angle (geodesic, deg) and head centre (mm);
median, mean and 95th percentile over all consecutive pairs of a head. Error = geodesic angle to the
true rotation (deg) and distance to the true head centre (mm), mean over frames: a filter should lower
the jitter without adding error. frames/s: the sequential loop (batch 1, as a live camera runs),
rendering excluded, and frames per CPU-second (``time.process_time``, all threads of the process: the
rate where the threads have the cores to themselves; the wall clock of a shared machine mostly measures
the other processes); a last row runs ``track_sequence`` writing the CSV and a GIF of the overlays (what a
tracking user keeps per frame). Trained weights (``--pose``/``--shape``) are needed for meaningful jitter; the
networks' speed does not depend on them.

Run: ``.venv/bin/python benchmarks/bench_tracking.py --pose runs/pose --out benchmarks/results/tracking.json``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import command_line, machine_info, write_report  # (this folder is on sys.path)

CONFIGS = {
    "per-frame": {"track": False},
    "tracked": {},
    "tracked + one-euro": {"filter": "one-euro"},
    "tracked + constant-velocity": {"filter": "constant-velocity"},
}


def static_heads(n_heads: int, n_frames: int, seed: int = 11):
    """``n_heads`` lists of ``n_frames`` frames (uint16 mm) of a static head, and each head's scene."""
    from depthface.facemodel import load_face_model
    from depthface.synth.profiles import get_profile
    from depthface.synth.scenes import SceneSampler
    from depthface.synth.sensor import SensorProfile
    from depthface.synth.storage import render_frame

    model = load_face_model()
    sampler = SceneSampler(model, get_profile("syndata2"), seed)
    sensor = SensorProfile.preset("kinect_v1")
    heads = []
    for h in range(n_heads):
        frames, scene = [], None
        for i in range(n_frames):
            depth, scene, _ = render_frame(sampler, sensor, 1000 * h + i, h, full=True)  # new noise, same scene
            frames.append(depth)
        heads.append((frames, scene))
    return heads, model


def angle_deg(R1: np.ndarray, R2: np.ndarray) -> np.ndarray:
    """Geodesic angles (deg) between rotation stacks ``(N, 3, 3)``."""
    from depthface.geometry.rotations import geodesic_angle_deg

    return geodesic_angle_deg(torch.as_tensor(R1), torch.as_tensor(R2)).numpy()


def run_config(rec, heads, k, name: str, options: dict) -> dict:
    """Jitter, error and speed of one tracker configuration over every head."""
    from depthface.inference.tracking import Tracker, TrackerConfig

    rot_jit, tr_jit, rot_err, tr_err, lost = [], [], [], [], 0
    seconds, cpu, n = 0.0, 0.0, 0
    for frames, scene in heads:
        tracker = Tracker(rec, TrackerConfig(**options))
        Rs, ts = [], []
        t0, c0 = time.perf_counter(), time.process_time()
        outs = [tracker.step(d, k, i / 30.0) for i, d in enumerate(frames)]
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        n += len(frames)
        for f in outs:
            if f.rotation is None:
                lost += 1
                continue
            Rs.append(f.rotation)
            ts.append(f.translation)
        if len(Rs) < 2:
            continue
        Rs, ts = np.stack(Rs), np.stack(ts)
        rot_jit += angle_deg(Rs[1:], Rs[:-1]).tolist()
        tr_jit += np.linalg.norm(ts[1:] - ts[:-1], axis=1).tolist()
        rot_err += angle_deg(Rs, np.repeat(scene.rotation[None], len(Rs), axis=0)).tolist()
        tr_err += np.linalg.norm(ts - scene.translation, axis=1).tolist()

    def stats(v: list[float]) -> dict:
        a = np.asarray(v)
        return {"median": float(np.median(a)), "mean": float(a.mean()), "p95": float(np.percentile(a, 95))} if len(a) \
            else {"median": None, "mean": None, "p95": None}

    return {"config": name, "options": options, "frames": n, "without_pose": lost, "frames_per_s": n / seconds,
            "frames_per_cpu_s": n / cpu,
            "rotation_jitter_deg": stats(rot_jit), "translation_jitter_mm": stats(tr_jit),
            "rotation_error_deg": stats(rot_err)["mean"], "translation_error_mm": stats(tr_err)["mean"]}


def video_row(rec, heads, k, folder: Path) -> dict:
    """frames/s of :func:`track_sequence` (tracked, no filter) writing a GIF of the overlays."""
    from depthface.inference.tracking import SequenceFrame, TrackerConfig, track_sequence

    seconds, cpu, n = 0.0, 0.0, 0
    for h, (frames, _) in enumerate(heads):
        seq = [SequenceFrame(f"{i}", d.astype(np.float32), k, i / 30.0) for i, d in enumerate(frames)]
        t0, c0 = time.perf_counter(), time.process_time()
        track_sequence(rec, seq, TrackerConfig(), out=folder, video=folder / f"head{h}.gif")
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        n += len(frames)
    return {"config": "tracked + CSV + GIF of overlays", "frames": n, "frames_per_s": n / seconds,
            "frames_per_cpu_s": n / cpu}


def format_table(rows: list[dict], machine: dict) -> str:
    lines = [f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['threads']} thread(s), nice "
             f"{machine['nice']}; load average {machine['load_before']} -> {machine['load_after']}; weights: "
             f"{machine['weights']}",
             "jitter: frame-to-frame change on a static head (median / mean / p95); error: mean to the truth"]
    head = (f"{'configuration':<28} {'rot jitter deg':>22} {'centre jitter mm':>22} {'rot err':>8} {'t err mm':>8} "
            f"{'no pose':>7} {'frames/s':>8} {'f/cpu-s':>8}")
    lines += [head, "-" * len(head)]

    def trio(s: dict) -> str:
        return "n/a" if s["median"] is None else f"{s['median']:.2f} / {s['mean']:.2f} / {s['p95']:.2f}"

    for r in rows:
        if "rotation_jitter_deg" not in r:
            lines.append(f"{r['config']:<28} {'':>22} {'':>22} {'':>8} {'':>8} {'':>7} {r['frames_per_s']:>8.1f} "
                         f"{r['frames_per_cpu_s']:>8.1f}")
            continue
        err = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"{r['config']:<28} {trio(r['rotation_jitter_deg']):>22} {trio(r['translation_jitter_mm']):>22} "
                     f"{err(r['rotation_error_deg']):>8} {err(r['translation_error_mm']):>8} {r['without_pose']:>7} "
                     f"{r['frames_per_s']:>8.1f} {r['frames_per_cpu_s']:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pose", type=Path, default=None, help="pose checkpoint / run (default: random tiny weights)")
    ap.add_argument("--shape", type=Path, default=None)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--refine", default="none", choices=["none", "pose", "pose+shape"],
                    help="the model fit after the network (the product's default is pose+shape; it needs trained "
                         "networks, --pose); none: the network alone, as the committed table")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tracking.json"))
    args = ap.parse_args(argv)

    from depthface.geometry.camera import Intrinsics
    from depthface.inference import Reconstructor
    from depthface.models.export import cpu_count

    cores = args.threads or cpu_count()
    torch.set_num_threads(cores)
    machine = machine_info(cpu_count())
    machine["threads"] = cores
    machine["nice"] = os.nice(0)
    heads, model = static_heads(args.heads, args.frames)
    print(f"rendered {args.heads} x {args.frames} frames", file=sys.stderr)
    if args.pose is not None:
        rec = Reconstructor.from_checkpoints(args.pose, args.shape, backend=args.backend, refine=args.refine)
        machine["weights"] = str(args.pose)
    else:
        from depthface.models.config import NetConfig
        from depthface.models.networks import DAPoseNet

        torch.manual_seed(0)
        if args.refine != "none":
            raise SystemExit("--refine needs trained networks (--pose)")
        rec = Reconstructor(DAPoseNet(NetConfig.preset("tiny")).eval(), None, model, refine="none")
        machine["weights"] = "random tiny (speed only)"
    machine["refine"] = args.refine
    k = Intrinsics.preset("kinect_v1")
    rec.predict_batch([heads[0][0][0]], k)  # warm-up
    rows = [run_config(rec, heads, k, name, opts) for name, opts in CONFIGS.items()]
    import tempfile

    with tempfile.TemporaryDirectory(prefix="depthface-track-") as tmp:
        rows.append(video_row(rec, heads, k, Path(tmp)))
    machine["load_after"] = round(os.getloadavg()[0], 2)
    print(format_table(rows, machine))
    write_report(args.out, {"command": command_line(), "machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
