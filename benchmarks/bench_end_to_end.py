"""End-to-end speed: depth file in, pose + mesh out, per stage and in total.

The whole path of :meth:`depthface.inference.Reconstructor.predict_batch` on simulated Kinect v1 frames
(syndata2 scenes, the sensor simulated over the full 640x480 frame, written as 16-bit PNGs), for each
network preset (random weights: the speed does not depend on them), backend (``torch``: eval,
inference mode, float32; ``onnx``: ONNX Runtime on one shared pool) and batch size (frames per network
call). Stages, timed one after the other over the same frames:

``read`` (16-bit PNG) -> ``validate`` -> ``localise`` (automatic head localisation) -> ``crop``
(metric crop + position image) -> ``normalise`` -> ``pose`` (DAPoseNet) -> ``refine-crop`` (crop
around the predicted head + normalise) -> ``pose-2`` -> ``shape`` (DASHapeNet) -> ``mesh`` (with
``--refine``: the model fit; then pose the vertices, landmarks, confidence, face verdict) and, with ``--outputs``, ``outputs`` (both .ply meshes + the overlay
PNG per frame, as ``predict`` writes them).

``total`` is measured separately: reading the files plus one ``predict_batch`` call per group (what a
user's loop does), so it includes everything between the stages too. frames/s = frames / total. On a
shared machine the wall clock mostly measures the other processes, so the CPU time of the same pass is
kept too (``time.process_time``: all threads of this process): frames per CPU-second is the rate the
path reaches where its threads have the cores to themselves (with ``--threads 1``: one idle core).
Times are the median of ``--rounds`` passes over all frames (the machine is shared; the load average
is printed and stored).

Run: ``.venv/bin/python benchmarks/bench_end_to_end.py --out benchmarks/results/end_to_end.json``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from _common import StageLog, command_line, machine_info, write_report  # (this folder is on sys.path)

STAGES = ("read", "validate", "localise", "crop", "normalise", "pose", "refine-crop", "pose-2", "shape", "mesh")


@dataclass
class Row:
    """One (preset, backend, batch) case: seconds per frame of every stage and in total."""

    preset: str
    backend: str
    batch: int
    frames: int
    stage_ms: dict[str, float]  # median ms per frame of each stage
    total_ms: float  # median ms per frame, measured end to end
    frames_per_s: float
    cpu_ms: float  # median CPU time (all threads of the process) per frame, end to end
    frames_per_cpu_s: float  # frames per CPU-second: the rate of an idle machine where the threads had the cores
    outputs_ms: float | None = None  # per-frame files (two .ply + overlay), ms per frame
    frames_per_s_with_outputs: float | None = None
    totals_ms: list[float] = field(default_factory=list)


def make_frames(n_unique: int, folder: Path) -> tuple[list[Path], object]:
    """Render ``n_unique`` simulated Kinect frames and write them as 16-bit PNGs; returns the paths."""
    from depthface.data.frames import write_depth_png16
    from depthface.facemodel import load_face_model
    from depthface.synth.profiles import get_profile
    from depthface.synth.scenes import SceneSampler
    from depthface.synth.sensor import SensorProfile
    from depthface.synth.storage import render_frame

    model = load_face_model()
    sampler = SceneSampler(model, get_profile("syndata2"), 7)
    sensor = SensorProfile.preset("kinect_v1")
    paths = []
    for i in range(n_unique):
        depth, _, _ = render_frame(sampler, sensor, 7, i, full=True)
        paths.append(write_depth_png16(folder / f"frame_{i:03d}.png", depth))
    return paths, model


def make_reconstructor(preset: str, backend: str, model, folder: Path, threads: int, refine: str = "none"):
    """A Reconstructor with networks of ``preset`` on ``backend`` (ONNX: one shared pool of ``threads``
    threads, not spinning when there is one thread): random weights (the networks' speed does not depend on
    them), or with ``refine`` on the release networks (``small``), since the fit's time depends on how good
    its start is."""
    from depthface.inference import Reconstructor
    from depthface.models.config import NetConfig
    from depthface.models.networks import DAPoseNet, DASHapeNet

    torch.manual_seed(0)
    if refine != "none":
        if preset != "small":
            raise SystemExit("--refine needs trained networks: only the release ones (--presets small) ship")
        from depthface.models.release import release_checkpoint
        from depthface.train.pose import load_pose_net
        from depthface.train.shape import load_shape_net

        pose, shape = load_pose_net(release_checkpoint("pose"))[0], load_shape_net(release_checkpoint("shape"))[0]
    else:
        cfg = NetConfig.preset(preset)
        pose, shape = DAPoseNet(cfg).eval(), DASHapeNet(cfg.with_vertices(int(model.regressed_vertices.numel()))).eval()
    if backend == "onnx":
        from depthface.models.export import OnnxPoseNet, OnnxShapeNet, export_onnx

        pose = OnnxPoseNet(export_onnx(pose, folder / f"{preset}_pose.onnx", "pose"), threads=threads,
                           spinning=threads > 1)
        shape = OnnxShapeNet(export_onnx(shape, folder / f"{preset}_shape.onnx", "shape"), threads=threads,
                             spinning=threads > 1)
    return Reconstructor(pose, shape, model, refine=refine)


def stage_pass(rec, paths: list[Path], k, batch: int, outputs: Path | None) -> dict[str, float]:
    """One pass over ``paths`` timing every stage separately (seconds, summed over frames)."""
    from depthface.data.localize import localize_head
    from depthface.data.preprocess import check_frame, crop_around
    from depthface.inference.pictures import save_overlay
    from depthface.geometry.rotations import matrix_to_euler, quaternion_to_matrix
    from depthface.inference.io import read_depth_file

    acc = dict.fromkeys(STAGES + ("outputs",), 0.0)

    def timed(stage: str, fn):
        t0 = time.perf_counter()
        out = fn()
        acc[stage] += time.perf_counter() - t0
        return out

    for start in range(0, len(paths), batch):
        group = paths[start:start + batch]
        raw = timed("read", lambda: [read_depth_file(p) for p in group])
        ds = timed("validate", lambda: [check_frame(d, k) for d in raw])
        locs = timed("localise", lambda: [localize_head(d, k) for d in ds])
        keep = [i for i, loc in enumerate(locs) if loc.found]
        if not keep:
            continue
        preps = timed("crop", lambda: [crop_around(ds[i], k, locs[i].centre, "localizer", locs[i]) for i in keep])
        x = timed("normalise", lambda: rec._batch_input(preps))
        q, t = timed("pose", lambda: rec._pose_batch(preps, x))
        first = [p.centre_source for p in preps]

        def recrop():
            new = [crop_around(ds[i], k, t[j], "refined", preps[j].localization) for j, i in enumerate(keep)]
            return new, rec._batch_input(new)

        preps, x = timed("refine-crop", recrop)
        q, t = timed("pose-2", lambda: rec._pose_batch(preps, x))
        heads = timed("shape", lambda: rec._shape_batch(x))
        def finish():
            R = quaternion_to_matrix(torch.from_numpy(q)).numpy()
            ypr = matrix_to_euler(torch.from_numpy(R)).numpy()
            return [rec._finish(ds[keep[j]], preps[j], k, q[j], t[j], heads[j], first[j], True, R[j], ypr[j])
                    for j in range(len(keep))]

        results = timed("mesh", finish)
        if outputs is not None:
            def write():
                for j, res in enumerate(results):
                    d = outputs / f"{start + j:04d}"
                    rec.face_model.export_mesh(res.vertices_camera, d / "mesh_camera.ply")
                    rec.face_model.export_mesh(res.vertices_head, d / "mesh_head.ply")
                    y, p_, r = res.ypr
                    save_overlay(d / "overlay.png", ds[keep[j]], k, res.vertices_camera, res.landmarks2d, res.rotation,
                                 res.translation, f"yaw {y:+.1f} pitch {p_:+.1f} roll {r:+.1f} deg")
            timed("outputs", write)
    return acc


def total_pass(rec, paths: list[Path], k, batch: int) -> tuple[float, float]:
    """Wall and CPU seconds (``time.process_time``: every thread of the process) to read every file and
    run ``predict_batch`` on groups of ``batch`` frames."""
    from depthface.inference.io import read_depth_file

    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(paths), batch):
        group = [read_depth_file(p) for p in paths[start:start + batch]]
        rec.predict_batch(group, k, max_batch=batch)
    return time.perf_counter() - t0, time.process_time() - c0


def bench_case(rec, preset: str, backend: str, paths: list[Path], k, batch: int, rounds: int,
               outputs: Path | None) -> Row:
    """Stage and total timings of one case (a warm-up pass first)."""
    total_pass(rec, paths[: max(batch, 2)], k, batch)  # warm-up (compilation, allocator)
    stages, totals, cpus = [], [], []
    for _ in range(rounds):
        stages.append(stage_pass(rec, paths, k, batch, outputs))
        wall, cpu = total_pass(rec, paths, k, batch)
        totals.append(wall)
        cpus.append(cpu)
    n = len(paths)
    med = {s: 1e3 * statistics.median(p[s] for p in stages) / n for s in STAGES + ("outputs",)}
    total = 1e3 * statistics.median(totals) / n
    cpu = 1e3 * statistics.median(cpus) / n
    out_ms = med.pop("outputs") if outputs is not None else None
    return Row(preset, backend, batch, n, {s: round(v, 3) for s, v in med.items()}, round(total, 3),
               round(1e3 / total, 1), round(cpu, 3), round(1e3 / cpu, 1), None if out_ms is None else round(out_ms, 3),
               None if out_ms is None else round(1e3 / (total + out_ms), 1), [round(1e3 * t / n, 3) for t in totals])


def format_table(rows: list[Row], machine: dict) -> str:
    lines = [f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['threads']} thread(s), nice "
             f"{machine['nice']}, torch {machine['torch']}, onnxruntime {machine['onnxruntime']}; load average "
             f"{machine['load_before']} -> {machine['load_after']}",
             "ms per frame by stage (median of the rounds); total measured separately (read + predict_batch)"]
    short = {"read": "read", "validate": "valid", "localise": "local", "crop": "crop", "normalise": "norm",
             "pose": "pose", "refine-crop": "recrop", "pose-2": "pose2", "shape": "shape", "mesh": "mesh"}
    head = (f"{'preset':<6} {'backend':<7} {'batch':>5} " + " ".join(f"{short[s]:>6}" for s in STAGES)
            + f" {'total':>7} {'frames/s':>8} {'cpu ms':>7} {'f/cpu-s':>8} {'files':>6} {'fps+files':>9}")
    lines += [head, "-" * len(head)]
    for r in rows:
        files = "" if r.outputs_ms is None else f"{r.outputs_ms:.2f}"
        fpsf = "" if r.frames_per_s_with_outputs is None else f"{r.frames_per_s_with_outputs:.1f}"
        lines.append(f"{r.preset:<6} {r.backend:<7} {r.batch:>5} " + " ".join(f"{r.stage_ms[s]:>6.2f}" for s in STAGES)
                     + f" {r.total_ms:>7.2f} {r.frames_per_s:>8.1f} {r.cpu_ms:>7.2f} {r.frames_per_cpu_s:>8.1f} {files:>6} "
                     f"{fpsf:>9}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/end_to_end.json"))
    ap.add_argument("--presets", nargs="+", default=["paper", "small"])
    ap.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    ap.add_argument("--frames", type=int, default=64, help="frames per pass (16 distinct scenes, repeated)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--outputs", action="store_true", help="also time the per-frame files (.ply x2 + overlay)")
    ap.add_argument("--threads", type=int, default=None, help="torch and ORT threads (default: the cores)")
    ap.add_argument("--refine", default="none", choices=["none", "pose", "pose+shape"],
                    help="the model fit after the networks (the product's default is pose+shape: then the release "
                         "networks, --presets small); none: the networks alone, random weights")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from depthface.geometry.camera import Intrinsics
    from depthface.models.export import cpu_count

    cores = args.threads or cpu_count()
    torch.set_num_threads(cores)
    log = StageLog()
    machine = machine_info(cpu_count())
    machine["threads"] = cores
    machine["nice"] = os.nice(0)
    k = Intrinsics.preset("kinect_v1")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="depthface-e2e-") as tmp:
        tmp = Path(tmp)
        unique, model = make_frames(min(16, args.frames), tmp / "frames")
        paths = [unique[i % len(unique)] for i in range(args.frames)]
        log(f"rendered {len(unique)} frames")
        for preset in args.presets:
            for backend in args.backends:
                rec = make_reconstructor(preset, backend, model, tmp, cores, args.refine)
                for batch in args.batches:
                    rows.append(bench_case(rec, preset, backend, paths, k, batch, args.rounds,
                                           tmp / "out" if args.outputs else None))
                    log(f"{preset} {backend} batch {batch}: {rows[-1].frames_per_s} frames/s")
    machine["load_after"] = round(os.getloadavg()[0], 2)
    machine["total_s"] = round(log.elapsed(), 1)
    print(format_table(rows, machine))
    write_report(args.out, {"command": command_line(), "machine": machine, "stages": list(STAGES), "refine": args.refine,
                            "rows": [asdict(r) for r in rows]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
