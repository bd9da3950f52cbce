"""Benchmark of the synthetic-data generator: complete samples per second, today's code against a reference tree.

**End to end** (the figure that counts): complete samples per second of one process -- what
``depthface synth --profile syndata2 --sensor ...`` writes per frame (scene, head render, hair, torso, background,
sensor simulation, crop, labels, chunk writing) -- for clean, ``kinect_v1``, ``tof_kinect_v2`` and
``kinect_v1_random`` samples, each in a fresh interpreter, for this checkout and for a reference tree (by default
the code at commit ``4c60574``, extracted with ``git archive``), runs interleaved so that a drifting machine load
hits both alike; medians and best of ``--e2e-repeats``, per wall-clock second and per CPU second of the process.
Two measures:

* ``dataset``: ``generate`` of a ``--e2e-frames`` (512) sample SynData2 set from scratch, as before: it includes
  the one-time costs of a run (the face model's hole fills, the first identities' shapes -- 512 frames meet 165
  identities, a full SynData2 set of 47,034 frames meets each 285 times -- and eight full frames);
* ``steady``: the chunks of a full-size SynData2 set once every identity's shape (and, where the tree has them,
  every identity's and expression's skull bound) is cached, i.e. the cost per sample of a full run
  (``--steady-chunks`` chunks of 256 samples after chunk 0).

**Kernels** (``--kernels CHUNKS``): milliseconds per steady kinect_v1 sample of this checkout, in all and in each
compiled kernel, timed where Python calls it (numba's dispatch included), in a fresh interpreter.

**Stages** (``--stages``): median milliseconds per 640x480 frame over random head poses of the ICT head
(``render_head``: the head's z-buffer; ``scene_context``, ``sensor_effects``, ``simulate_kinect``: in the 340 mm
head window and on the full frame; ``metric_crop``), the fastest of ``--repeats`` runs of each.

    python benchmarks/bench_synth_render.py --out benchmarks/results/render.json      # before = 4c60574
    python benchmarks/bench_synth_render.py --before /tmp/before                      # any tree holding depthface/
    python benchmarks/bench_synth_render.py --before-commit 4c60574,74f42b9           # two references
    python benchmarks/bench_synth_render.py --no-before --modes '' --kernels 8        # the kernel profile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
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
PROFILES = ("clean", "kinect_v1", "tof_kinect_v2", "kinect_v1_random")
#: the code before the issue-15 synthesis speed-ups
BEFORE_COMMIT = "4c60574"

_E2E = """
import sys, tempfile, time
from pathlib import Path
from depthface.facemodel import load_face_model
from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
from depthface.synth import storage
mode, name, n, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] or None
m = load_face_model(model)
sensor = None if name == "clean" else SensorProfile.preset(name)
with tempfile.TemporaryDirectory() as tmp:
    # numba's caches loaded and every code path compiled once
    storage.generate(Path(tmp) / "warm", get_profile("syndata2").scaled(count=8), 1, m, sensor, chunk_size=8,
                     progress=False)
    if mode == "dataset":
        t0, c0 = time.perf_counter(), time.process_time()
        storage.generate(Path(tmp) / "d", get_profile("syndata2").scaled(count=n), 0, m, sensor, progress=False)
    else:  # steady: chunks of a full-size SynData2 set, every identity's shape cached
        profile, sim = storage.with_sensor_camera(get_profile("syndata2"), sensor)
        manifest = storage.make_manifest(profile, m, 0, sim, 256, 8)
        worker = storage._Worker(m, profile, 0, sim, manifest)
        for k in range(profile.n_identities):
            worker.sampler.identity(k)
            for e in range(len(profile.expressions)):  # the skull bounds (issue 15's later trees), as in a full run
                getattr(worker.sampler, "skull_bound", lambda *a: None)(k, e)
        t0, c0 = time.perf_counter(), time.process_time()
        for c in range(1, 1 + n):
            arrays, frames = worker.chunk(c)
            storage.write_chunk(Path(tmp), c, arrays, frames)
        n *= 256
    import depthface
    print(n / (time.perf_counter() - t0), n / (time.process_time() - c0), depthface.__file__)
"""


_KERNELS = """
import json, sys, time
import importlib, pkgutil
import depthface.synth as synth
from numba.core.registry import CPUDispatcher
mods = [importlib.import_module(m.name) for m in pkgutil.walk_packages(synth.__path__, "depthface.synth.")]
spent, calls, wrapped = {}, {}, {}
def wrap(d):
    name = d.py_func.__name__
    def timed(*a):
        t = time.perf_counter()
        r = d(*a)
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
        calls[name] = calls.get(name, 0) + 1
        return r
    return wrapped.setdefault(d, timed)
for m in mods:  # every compiled kernel, timed where Python calls it
    for k, v in list(vars(m).items()):
        if isinstance(v, CPUDispatcher):
            setattr(m, k, wrap(v))
from depthface.facemodel import load_face_model
from depthface.synth import storage
from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
sensor, chunks, model = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
profile, sim = storage.with_sensor_camera(get_profile("syndata2"), SensorProfile.preset(sensor))
m = load_face_model(model)
worker = storage._Worker(m, profile, 0, sim, storage.make_manifest(profile, m, 0, sim, 256, 8))
for k in range(profile.n_identities):
    worker.sampler.identity(k)
    for e in range(len(profile.expressions)):
        worker.sampler.skull_bound(k, e)
worker.chunk(1)
spent.clear(); calls.clear()
t0 = time.perf_counter()
for c in range(2, 2 + chunks):
    worker.chunk(c)
n = 256 * chunks
total = (time.perf_counter() - t0) / n * 1e3
print(json.dumps({"samples": n, "total_ms": total, "kernels_ms": sum(spent.values()) / n * 1e3,
                  "per_kernel_ms": {k: v / n * 1e3 for k, v in sorted(spent.items(), key=lambda x: -x[1])},
                  "calls_per_sample": {k: v / n for k, v in calls.items()}}))
"""


def kernel_profile(sensor: str, chunks: int, model: Path | None) -> dict:
    """Milliseconds per steady sample of this checkout (chunk writing excluded): in all, in the compiled kernels
    (each timed where Python calls it, so numba's dispatch is included) and per kernel, in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", _KERNELS, sensor, str(chunks), "" if model is None else str(model)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def e2e_rate(tree: str, mode: str, sensor: str, n: int, model: Path | None) -> tuple[float, float]:
    """Complete samples per second of one process with the package in ``tree``, in a fresh interpreter: per
    wall-clock second and per CPU second of the process (what one process makes on a core it has to itself; on
    a shared machine the wall-clock rate falls with the load, the CPU rate much less).

    Args:
        mode: ``dataset`` (``generate`` of ``n`` SynData2 samples from scratch) or ``steady`` (``n`` chunks of a
            full-size SynData2 set once every identity's shape is cached).
    """
    env = {**os.environ, "PYTHONPATH": tree}
    # -P: `python -c` would put the working directory (a checkout with its own depthface/) ahead of PYTHONPATH
    out = subprocess.run([sys.executable, "-P", "-c", _E2E, mode, sensor, str(n),
                          "" if model is None else str(model.resolve())],
                         env=env, capture_output=True, text=True, check=True)
    wall, cpu, package = out.stdout.strip().splitlines()[-1].split()
    if Path(package).resolve().parent.parent != Path(tree).resolve():
        raise RuntimeError(f"the run meant for {tree} imported {package}")
    return float(wall), float(cpu)


def extract_tree(commit: str, dest: Path) -> Path:
    """``git archive`` of the ``depthface`` package at ``commit`` into ``dest`` (a tree for ``PYTHONPATH``)."""
    repo = Path(__file__).resolve().parents[1]
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", commit, "depthface"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def end_to_end(trees: dict[str, str], modes: dict[str, int], repeats: int, model: Path | None
               ) -> dict[str, dict[str, dict[str, dict[str, list[float]]]]]:
    """Every run's rates: ``[mode][tree][profile]["wall" | "cpu"]`` lists, trees interleaved per repeat."""
    runs: dict = {}
    for mode, n in modes.items():
        for name in PROFILES:
            for _ in range(repeats):
                for tree, path in trees.items():
                    wall, cpu = e2e_rate(path, mode, name, n, model)
                    row = runs.setdefault(mode, {}).setdefault(tree, {}).setdefault(name, {"wall": [], "cpu": []})
                    row["wall"].append(wall)
                    row["cpu"].append(cpu)
                    print(f"  {mode:8s} {tree:7s} {name:17s} {wall:7.1f} /wall s {cpu:7.1f} /CPU s", flush=True)
    return runs


def e2e_table(runs: dict) -> list[str]:
    """Markdown rows: per measure, tree and clock, the median (best) rate of each profile, and the ratios."""
    lines = ["| complete samples / s, one process | " + " | ".join(PROFILES) + " |",
             "| --- |" + " --- |" * len(PROFILES)]
    for mode, by_tree in runs.items():
        for clock in ("cpu", "wall"):
            for tree, rows in by_tree.items():
                cells = [f"{np.median(rows[n][clock]):.0f} ({max(rows[n][clock]):.0f})" for n in PROFILES]
                lines.append(f"| {mode}, {tree}, per {clock.upper() if clock == 'cpu' else 'wall'} s | "
                             + " | ".join(cells) + " |")
            for ref in (t for t in by_tree if t != "after" and "after" in by_tree):
                ratios = [np.median(by_tree["after"][n][clock]) / np.median(by_tree[ref][n][clock])
                          for n in PROFILES]
                lines.append(f"| {mode}, after / {ref} ({clock}) | " + " | ".join(f"{r:.2f}x" for r in ratios)
                             + " |")
    return lines


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


def stage_timings(frames: int, seed: int, model: Path | None) -> dict:
    """Median / p90 milliseconds of the generator's stages on ``frames`` random head poses (see the module
    docstring)."""
    K = Intrinsics.preset("kinect_v1")
    V, T = load_head(model or PACKAGED_MODEL)
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(frames):
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
            seed_i = _Seeded([seed, i])
            scene_win = sensor_input_window(w, K)
            ms, (scene, labels) = timed(add_scene_context, clean, R, t, K, seed_i, KINECT_V1, window=scene_win,
                                        return_labels=True)
            stages["scene_context" + suffix].append(ms)
            ms, _ = timed(apply_sensor, scene, K, seed_i, KINECT_V1, labels=labels, window=w)
            stages["sensor_effects" + suffix].append(ms)
            ms, _ = timed(simulate_kinect, clean, R, t, K, seed_i, window_mm=None if w is None else DEFAULT_WINDOW_MM)
            stages["simulate_kinect" + suffix].append(ms)

    from depthface.synth.scenes import crop_sample

    frame16 = np.clip(np.rint(clean), 0, 65535).astype(np.uint16)
    stages["metric_crop"] = [timed(crop_sample, frame16, K, t)[0] for _ in range(frames)]
    return {"frames": frames, "resolution": [K.width, K.height], "triangles": int(len(T)),
            "poses": "yaw U(-75,75), pitch U(-45,45), roll U(-20,20) deg; z U(700,1300) mm; x,y +-150/+-100 mm",
            "window": f"{DEFAULT_WINDOW_MM:.0f} mm square around the head centre",
            "median_window_pixels": float(np.median(pixels)), "repeats_per_frame": REPEATS,
            "median_ms": {k: float(np.median(v)) for k, v in stages.items()},
            "p90_ms": {k: float(np.percentile(v, 90)) for k, v in stages.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--e2e-frames", type=int, default=512, help="samples of the 'dataset' measure per profile")
    ap.add_argument("--steady-chunks", type=int, default=2, help="256-sample chunks of the 'steady' measure")
    ap.add_argument("--e2e-repeats", type=int, default=3, help="interleaved end-to-end runs per tree and profile")
    ap.add_argument("--modes", default="steady,dataset", help="end-to-end measures to run (steady, dataset)")
    ap.add_argument("--before", type=Path, default=None,
                    help="a tree holding the reference depthface package (default: extracted from --before-commit)")
    ap.add_argument("--before-commit", default=BEFORE_COMMIT,
                    help="the reference commit (default: %(default)s); more, comma-separated, are timed too, "
                         "each named by its commit")
    ap.add_argument("--no-before", action="store_true", help="time this checkout only")
    ap.add_argument("--stages", action="store_true", help="also time the stages (render, context, sensor, crop)")
    ap.add_argument("--kernels", type=int, default=0, metavar="CHUNKS",
                    help="also profile the compiled kernels of CHUNKS steady kinect_v1 chunks (this checkout only)")
    ap.add_argument("--frames", type=int, default=50, help="random poses of the stage timings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="stage timings: runs per frame and stage, fastest kept")
    ap.add_argument("--model", type=Path, default=None, help="face model (default: the packaged one)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/render.json"))
    args = ap.parse_args()
    global REPEATS
    REPEATS = max(1, args.repeats)

    load_at_start = list(os.getloadavg())
    trees = {"after": str(Path(__file__).resolve().parents[1])}
    with tempfile.TemporaryDirectory() as tmp:
        before = None
        if not args.no_before:
            first, *more = args.before_commit.split(",")
            before = args.before or extract_tree(first, Path(tmp) / "before")
            extra = {c: str(extract_tree(c, Path(tmp) / c)) for c in more}
            trees = {"before": str(before), **extra, **trees}
        sizes = {"steady": args.steady_chunks, "dataset": args.e2e_frames}
        modes = {m: sizes[m] for m in args.modes.split(",") if m}
        print(f"end to end, {args.e2e_repeats} interleaved runs per tree and profile:")
        runs = end_to_end(trees, modes, args.e2e_repeats, args.model)

    result = {
        "end_to_end": runs,
        "median_samples_per_cpu_s": {m: {t: {n: float(np.median(r[n]["cpu"])) for n in r} for t, r in bt.items()}
                                     for m, bt in runs.items()},
        "median_samples_per_wall_s": {m: {t: {n: float(np.median(r[n]["wall"])) for n in r} for t, r in bt.items()}
                                      for m, bt in runs.items()},
        "before": None if args.no_before else (str(args.before) if args.before else args.before_commit),
        "after_commit": _git_head(),
        "e2e_frames": args.e2e_frames, "steady_chunks": args.steady_chunks, "e2e_repeats": args.e2e_repeats,
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average_1min_5min_15min_at_start": load_at_start,
                    "load_average_1min_5min_15min": list(os.getloadavg())},
    }
    table = e2e_table(runs)
    print("\n".join(table))
    result["table"] = table
    if args.kernels:
        result["kernels"] = kernel_profile("kinect_v1", args.kernels, args.model)
        k = result["kernels"]
        print(f"kinect_v1, {k['samples']} steady samples: {k['total_ms']:.3f} ms a sample, {k['kernels_ms']:.3f} "
              f"in compiled kernels, {k['total_ms'] - k['kernels_ms']:.3f} outside them")
        for name, ms in k["per_kernel_ms"].items():
            print(f"  {name:28s} {ms:.3f} ms  x{k['calls_per_sample'][name]:.1f}")
    if args.stages:
        result["stages"] = stage_timings(args.frames, args.seed, args.model)
        print(f"{'stage':24s} {'median ms':>10s} {'p90 ms':>10s}")
        for k, v in result["stages"]["median_ms"].items():
            print(f"{k:24s} {v:10.3f} {result['stages']['p90_ms'][k]:10.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


def _git_head() -> str | None:
    """This checkout's commit (``None`` outside git)."""
    out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or None


if __name__ == "__main__":
    main()
