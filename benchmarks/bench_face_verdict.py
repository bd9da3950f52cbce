"""Benchmark of the geometric face verdict (:mod:`depthface.inference.verdict`): precision and recall on
a labelled set of real synthetic faces and faceless scenes.

Faces: scenes of the ``syndata2`` (Biwi-like) and ``syndata3`` (ICT-3DHP-like, the held-out profile:
no threshold was chosen on it) profiles of the default face model, rendered and passed through the
Kinect v1 simulator over the full frame (hair, neck and torso, walls and boxes, noise, holes).
Faceless scenes, through the same simulator (which adds the neck, torso and hair around the object):

* ``sphere``: a head-sized sphere (radius 75-100 mm) where a head would be;
* ``ellipsoid``: a featureless head-sized ellipsoid (semi-axes 70-100, 95-130, 80-110 mm), turned;
* ``noise patch at 2 m``: a disc of random depth (1.9-2.1 m);
* ``no person``: wall and boxes only (``bench_localize.background_frame``).

The verdict is judged from a start pose like a pose network's answer: the true head pose (for the
faceless scenes, the object's pose) turned by ``--error`` degrees about a random axis and moved by
15 mm. Every frame is judged at every error level. ``ms/frame`` is the verdict alone (one thread).
A frame judged "face" counts as a true positive for faces, a false positive for the faceless scenes.

Usage::

    python benchmarks/bench_face_verdict.py --faces 40 --negatives 30     # table + results/face_verdict.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import python_and_processor, write_report  # noqa: E402
from bench_localize import background_frame  # noqa: E402

from depthface.facemodel import load_face_model  # noqa: E402
from depthface.geometry.rotations import rotvec_to_matrix_np  # noqa: E402
from depthface.inference.verdict import FaceTemplate, face_verdict  # noqa: E402
from depthface.synth.profiles import get_profile  # noqa: E402
from depthface.synth.render import render_depth  # noqa: E402
from depthface.synth.scenes import SceneSampler  # noqa: E402
from depthface.synth.context import _superellipsoid  # noqa: E402
from depthface.synth.sensor import SensorProfile, simulate_kinect  # noqa: E402
from depthface.synth.storage import STREAM_SENSOR  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "face_verdict.json"


def _rotation(rng: np.random.Generator, deg: float) -> np.ndarray:
    """A rotation by ``deg`` degrees about a random axis."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return rotvec_to_matrix_np(np.radians(deg) * axis)


def _yaw_pitch(yaw: float, pitch: float) -> np.ndarray:
    a, b = np.radians(yaw), np.radians(pitch)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rx @ ry


def face_frames(profile: str, n: int, seed: int, sensor: SensorProfile, model):
    """``(depth float32 (H, W), K, R, t)`` of ``n`` simulated-Kinect face scenes."""
    prof = get_profile(profile)
    sampler = SceneSampler(model, prof, seed)
    K = prof.intrinsics
    for i in range(n):
        scene = sampler.scene(i)
        depth = render_depth(*sampler.render_mesh(scene), K)
        rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_SENSOR, i]))
        depth = simulate_kinect(depth, scene.rotation, scene.translation, K, rng, sensor, window_mm=None,
                                head_vertices=sampler.head_vertices(scene))
        yield np.rint(depth).astype(np.float32), K, scene.rotation, scene.translation


def object_frames(kind: str, n: int, seed: int, sensor: SensorProfile, model):
    """``(depth, K, R, t)`` of ``n`` faceless scenes of ``kind`` (placed where syndata2 puts heads)."""
    prof = get_profile("syndata2")
    sampler = SceneSampler(model, prof, seed)
    K = prof.intrinsics
    rng = np.random.default_rng(np.random.SeedSequence([seed, 77, len(kind)]))
    for i in range(n):
        t = sampler.scene(i).translation
        R = _yaw_pitch(rng.uniform(-40, 40), rng.uniform(-25, 25))
        if kind in ("sphere", "ellipsoid"):
            axes = (np.full(3, rng.uniform(75, 100)) if kind == "sphere"
                    else np.array([rng.uniform(70, 100), rng.uniform(95, 130), rng.uniform(80, 110)]))
            v, tris = _superellipsoid(axes, 1.0, 1.0, 48, 72)
            clean = render_depth(v @ R.T + t, tris, K, cull_backfaces=False)
            srng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_SENSOR, 1000 + i]))
            depth = simulate_kinect(clean, R, t, K, srng, sensor, window_mm=None)
        elif kind == "noise patch at 2 m":
            depth = np.zeros((K.height, K.width))
            u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
            cu, cv, r = rng.uniform(150, 490), rng.uniform(120, 360), rng.uniform(40, 90)
            disc = (u - cu) ** 2 + (v - cv) ** 2 < r * r
            depth[disc] = rng.uniform(1900, 2100, disc.sum())
            t = np.array([(cu - K.cx) / K.fx * 2000, (cv - K.cy) / K.fy * 2000, 2000.0])
        else:  # no person
            depth = background_frame(rng, K, sensor)
        yield np.rint(depth).astype(np.float32), K, R, t


def judge(frames, tpl, errors: list[float], rng) -> dict:
    """The verdict of every frame at every start error: face counts, relief values and times."""
    out = {e: {"face": 0, "n": 0, "relief": [], "ms": []} for e in errors}
    for depth, K, R, t in frames:
        for e in errors:
            R0 = _rotation(rng, e) @ R
            d = rng.normal(size=3)
            t0 = t + 15.0 * d / np.linalg.norm(d)
            start = time.perf_counter()
            v = face_verdict(depth, K, tpl, R0, t0)
            out[e]["ms"].append(1000 * (time.perf_counter() - start))
            out[e]["n"] += 1
            out[e]["face"] += int(v.face)
            out[e]["relief"].append(round(v.relief, 3))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=40, help="face scenes per profile")
    ap.add_argument("--negatives", type=int, default=30, help="faceless scenes per kind")
    ap.add_argument("--errors", type=str, default="0,10,20", help="start-pose errors (degrees)")
    ap.add_argument("--seed", type=int, default=100, help="scene seed (the thresholds were chosen on seed 5)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    model = load_face_model()
    tpl = FaceTemplate.from_face_model(model)
    sensor = SensorProfile.preset("kinect_v1")
    errors = [float(e) for e in args.errors.split(",")]
    rng = np.random.default_rng(args.seed)
    rows = {}
    for prof, label in (("syndata2", "faces: syndata2 (Biwi-like)"), ("syndata3", "faces: syndata3 (held out)")):
        rows[label] = judge(face_frames(prof, args.faces, args.seed, sensor, model), tpl, errors, rng)
    for kind in ("sphere", "ellipsoid", "noise patch at 2 m", "no person"):
        rows[kind] = judge(object_frames(kind, args.negatives, args.seed, sensor, model), tpl, errors, rng)
    table = []
    print(f"{'scenes':<32}{'frames':>7}" + "".join(f"{f'face @{e:g} deg':>15}" for e in errors) + f"{'ms/frame':>10}")
    for label, r in rows.items():
        n = r[errors[0]]["n"]
        ms = float(np.median(np.concatenate([r[e]["ms"] for e in errors])))
        print(f"{label:<32}{n:>7}" + "".join(f"{r[e]['face'] / max(n, 1):>15.1%}" for e in errors) + f"{ms:>10.0f}")
        table.append({"scenes": label, "frames": n, "ms_per_frame_median": round(ms, 1),
                      **{f"face_rate_at_{e:g}deg": round(r[e]["face"] / max(n, 1), 4) for e in errors},
                      **{f"relief_at_{e:g}deg": r[e]["relief"] for e in errors}})
    summary = {}
    for e in errors:
        tp = sum(r[e]["face"] for label, r in rows.items() if label.startswith("faces"))
        pos = sum(r[e]["n"] for label, r in rows.items() if label.startswith("faces"))
        fp = sum(r[e]["face"] for label, r in rows.items() if not label.startswith("faces"))
        neg = sum(r[e]["n"] for label, r in rows.items() if not label.startswith("faces"))
        summary[f"{e:g}"] = {"precision": round(tp / max(tp + fp, 1), 4), "recall": round(tp / max(pos, 1), 4),
                             "false_positives": fp, "faceless_frames": neg, "faces": pos}
        print(f"start error {e:g} deg: precision {tp / max(tp + fp, 1):.3f}, recall {tp / max(pos, 1):.3f} "
              f"({fp} of {neg} faceless frames judged a face)")
    result = {"command": "python benchmarks/bench_face_verdict.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "seed": args.seed, "rows": table, "summary": summary,
              "machine": python_and_processor(), "wall_time_s": round(time.perf_counter() - t_start, 1)}
    write_report(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
