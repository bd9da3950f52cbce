"""Inference and training throughput of DAPoseNet and DASHapeNet on this machine.

Prints one table and writes JSON. Rows, for each preset (default ``paper`` and ``small``):

* inference frames/s of ``pose`` (DAPoseNet), ``shape`` (DASHapeNet's F + R) and ``both`` (pose then
  shape on the same batch), at batch 1 and 64, with these engines (``T`` = the machine's cores):

  - ``torch``: eval, ``no_grad``, float32, NCHW, ``torch.set_num_threads(T)``;
  - ``torch-cl``: eval, ``inference_mode``, float32, channels_last weights and input, T threads;
  - ``ort``: ONNX Runtime, ORT_ENABLE_ALL, one intra-op pool of T threads per session (ORT's default
    spinning);
  - ``ort-shared``: the same graphs on ORT's process-wide pool of T threads (what
    :class:`~depthface.models.export.OnnxPoseNet` / ``OnnxShapeNet`` use by default);
  - batch 1 only: ``torch-cl-1t`` and ``ort-1t``, the same with one thread (latency vs. threads);
  - ``cuda-torch`` / ``cuda-torch-cl`` / ``cuda-ort`` when CUDA is available;

* training images/s: DAPoseNet stage 1 (forward, backward, Adam step; batch 16) and DASHapeNet (one
  full AR-GAN iteration, :meth:`ShapeTrainer.step` with a source and a target batch of 16; images/s
  counts source images, as ``train_shape``'s history does).

The machine is shared, so the engines of one (preset, batch) are measured **round-robin**: every round
calls each engine's pose, shape and both once (a 10 ms pause between calls, outside the timing), so a
burst of load from other processes hits all engines alike and their ratios stay meaningful. Times are
medians over rounds after a warm-up (min also kept); the round count adapts to the cases' durations
(fewer for paper size at batch 64). Inputs are random: normalised images in ``[-1, 1]`` for inference,
position images in mm for training (whose timed step includes the normalisation). FLOPs are counted
analytically from the layer shapes (multiply-add = 2 FLOPs; batch norm, activations and the quaternion
normalisation are not counted).

Run: ``.venv/bin/python benchmarks/bench_inference.py --out benchmarks/results/inference.json``
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from _common import StageLog, command_line, machine_info, write_report  # (this folder is on sys.path)
from depthface.models.config import NetConfig
from depthface.models.networks import DAPoseNet, DASHapeNet, FeatureExtractor

MODES = ("pose", "shape", "both")
TRAIN_BATCH = 16
PAUSE_S = 0.01  # between timed calls (lets another engine's spinning threads go idle)


@dataclass
class Row:
    """One measured case."""

    section: str  # "inference" or "training"
    preset: str
    engine: str
    mode: str
    batch: int
    median_s: float  # per call (one batch, or one training iteration)
    min_s: float
    repeats: int
    per_s: float  # frames/s (inference) or images/s (training), from the median
    gflops_per_s: float | None  # implied by the analytic FLOP count
    times_s: list[float] = field(default_factory=list)


@dataclass
class Engine:
    """One way of running the two inference graphs."""

    name: str
    pose: Callable[[torch.Tensor], object]
    shape: Callable[[torch.Tensor], object]
    prepare: Callable[[torch.Tensor], torch.Tensor]  # CPU NCHW input -> this engine's input (untimed)
    context: Callable[[], object] = nullcontext  # entered around every call
    torch_threads: int | None = None  # torch.set_num_threads while running (None: leave)
    sync: Callable[[], None] = lambda: None
    batch1_only: bool = False


# ----------------------------------------------------------------------------------------- FLOPs


def conv_out(size: int, conv: nn.Conv2d) -> int:
    """Output side length of a square input through ``conv``."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    return (size + 2 * p - k) // s + 1


def feature_flops(f: FeatureExtractor, size: int) -> int:
    """FLOPs of one ``F`` pass on a ``size x size`` image (2 per multiply-add of every convolution)."""
    total = 0
    for m in f.net:
        if isinstance(m, nn.Conv2d):
            size = conv_out(size, m)
            k = m.kernel_size[0] * m.kernel_size[1]
            total += 2 * m.in_channels // m.groups * m.out_channels * k * size * size
    return total


def linear_flops(module: nn.Module) -> int:
    """FLOPs of every ``nn.Linear`` in ``module`` for one sample."""
    return sum(2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def flops_per_frame(pose: DAPoseNet, shape: DASHapeNet) -> dict[str, int]:
    """Analytic FLOPs per frame: ``F`` alone, and the pose, shape and both inference paths."""
    size = pose.cfg.image_size
    f = feature_flops(pose.F, size)
    p = f + linear_flops(pose.head)
    s = feature_flops(shape.F, size) + linear_flops(shape.R)
    return {"F": f, "pose": p, "shape": s, "both": p + s}


# ---------------------------------------------------------------------------------------- timing


def timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def repeats_for(estimate_s: float, target_s: float, min_reps: int, max_reps: int) -> int:
    """How many repeats of a call taking ``estimate_s`` fit in ``target_s``, within ``[min_reps,
    max_reps]``; but only 2 for calls over 1 s and 1 for calls over 8 s (the time budget)."""
    reps = max(min_reps, min(max_reps, int(target_s / max(estimate_s, 1e-6))))
    return 1 if estimate_s > 8.0 else min(reps, 2) if estimate_s > 1.0 else reps


def cuda_sync() -> None:
    torch.cuda.synchronize()


def sgemm_gflops(n: int = 2048, reps: int = 8) -> float:
    """Median fp32 matrix-multiply rate of torch now (a ceiling for the convolutions, and a load probe)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    times = [timed(lambda: a @ b, lambda: None) for _ in range(reps)]
    return 2 * n ** 3 / statistics.median(times) / 1e9


class ThreadsSet:
    """Context: ``torch.set_num_threads(n)`` inside, the previous count after (n None: no change)."""

    def __init__(self, n: int | None) -> None:
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        self.old = torch.get_num_threads()
        if self.n is not None and self.n != self.old:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        if torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)


def engine_calls(e: Engine, x: torch.Tensor) -> dict[str, Callable[[], object]]:
    """The three timed calls of an engine on its prepared input ``x``."""
    def run(*fns: Callable) -> Callable[[], object]:
        def call() -> object:
            with ThreadsSet(e.torch_threads), e.context():
                return [f(x) for f in fns]
        return call

    return {"pose": run(e.pose), "shape": run(e.shape), "both": run(e.pose, e.shape)}


def bench_round_robin(engines: list[Engine], preset: str, batch: int, size: int, flops: dict[str, int],
                      target_s: float, min_reps: int, max_reps: int = 20) -> list[Row]:
    """Rows for every engine and mode at one (preset, batch), measured round-robin."""
    engines = [e for e in engines if batch == 1 or not e.batch1_only]
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    calls = {e.name: engine_calls(e, e.prepare(x)) for e in engines}
    sync = {e.name: e.sync for e in engines}
    estimate = {}
    for e in engines:  # warm-up: pose and shape (their "both" needs no other)
        for mode in ("pose", "shape"):
            for _ in range(2 if batch == 1 else 1):
                estimate[e.name, mode] = timed(calls[e.name][mode], sync[e.name])
        estimate[e.name, "both"] = estimate[e.name, "pose"] + estimate[e.name, "shape"]
    cases = [(e.name, m) for e in engines for m in MODES]
    per_round = sum(estimate[c] for c in cases)
    rounds = repeats_for(per_round / len(cases), target_s, min_reps, max_reps)
    times: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
    for _ in range(rounds):
        for name, mode in cases:
            time.sleep(PAUSE_S)
            times[name, mode].append(timed(calls[name][mode], sync[name]))
    rows = []
    for (name, mode), ts in times.items():
        med = statistics.median(ts)
        fps = batch / med
        rows.append(Row("inference", preset, name, mode, batch, med, min(ts), len(ts), fps,
                        flops[mode] * fps / 1e9, ts))
    return rows


# ------------------------------------------------------------------------------------- engines


def make_nets(preset: str, n_vertices: int) -> tuple[DAPoseNet, DASHapeNet]:
    """Randomly initialised pose and shape networks in eval mode (CPU, float32)."""
    torch.manual_seed(0)
    cfg = NetConfig.preset(preset, n_vertices=n_vertices)
    return DAPoseNet(cfg).eval(), DASHapeNet(cfg).eval()


def export_pair(pose: DAPoseNet, shape: DASHapeNet, folder: Path, preset: str) -> tuple[Path, Path]:
    """Export (and verify) both graphs; returns their paths."""
    from depthface.models.export import export_onnx

    return (export_onnx(pose, folder / f"{preset}_pose.onnx", "pose"),
            export_onnx(shape, folder / f"{preset}_shape.onnx", "shape"))


def torch_engine(name: str, nets: tuple[DAPoseNet, DASHapeNet], device: str, channels_last: bool,
                 threads: int | None, batch1_only: bool = False) -> Engine:
    """A torch engine on copies of the networks (NCHW + no_grad, or channels_last + inference_mode)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    pose, shape = (copy.deepcopy(n).to(device, memory_format=fmt).eval() for n in nets)
    return Engine(name, pose, shape, lambda x: x.to(device).contiguous(memory_format=fmt),
                  torch.inference_mode if channels_last else torch.no_grad, threads,
                  cuda_sync if device == "cuda" else (lambda: None), batch1_only)


def ort_engine(name: str, paths: tuple[Path, Path], providers: list[str], threads: int, shared: bool,
               batch1_only: bool = False) -> Engine:
    """An ONNX Runtime engine: the wrappers, called as predict would (torch tensor in and out)."""
    from depthface.models.export import OnnxPoseNet, OnnxShapeNet

    pose = OnnxPoseNet(paths[0], threads=threads, providers=providers, shared_threads=shared)
    shape = OnnxShapeNet(paths[1], threads=threads, providers=providers, shared_threads=shared)
    return Engine(name, pose, shape, lambda x: x, batch1_only=batch1_only)


def build_engines(nets: dict[str, tuple[DAPoseNet, DASHapeNet]], paths: dict[str, tuple[Path, Path]],
                  cores: int) -> dict[str, list[Engine]]:
    """Every preset's engines: CPU ones, then CUDA ones when available. The per-session ORT pools of
    all presets are created before the shared pool: once that exists ONNX Runtime refuses new ones."""
    from depthface.models.export import default_providers

    cpu = ["CPUExecutionProvider"]
    engines: dict[str, list[Engine]] = {}
    for p in nets:
        cl = torch_engine("torch-cl", nets[p], "cpu", True, cores)
        engines[p] = [torch_engine("torch", nets[p], "cpu", False, cores), cl,
                      replace(cl, name="torch-cl-1t", torch_threads=1, batch1_only=True),
                      ort_engine("ort", paths[p], cpu, cores, shared=False),
                      ort_engine("ort-1t", paths[p], cpu, 1, shared=False, batch1_only=True)]
    for p in nets:
        engines[p].append(ort_engine("ort-shared", paths[p], cpu, cores, shared=True))
        if torch.cuda.is_available():
            engines[p] += [torch_engine("cuda-torch", nets[p], "cuda", False, None),
                           torch_engine("cuda-torch-cl", nets[p], "cuda", True, None)]
            if "CUDAExecutionProvider" in default_providers():
                engines[p].append(ort_engine("cuda-ort", paths[p], ["CUDAExecutionProvider", "CPUExecutionProvider"],
                                             cores, shared=True))
    return engines


# ------------------------------------------------------------------------------------- training


def random_batch(b: int, size: int, ki: int, ke: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch like the datasets give: position images in mm around a crop centre ~1 m away."""
    centre = torch.tensor([0.0, 0.0, 1000.0]) + torch.randn(b, 3, generator=g) * 20
    pos = centre[:, :, None, None] + torch.randn(b, 3, size, size, generator=g) * 60
    pos[:, :, :20] = 0  # some invalid pixels
    f = 2.0 * size
    intr = torch.tensor([f, f, size / 2, size / 2]).expand(b, 4).clone()
    return {"position": pos, "crop_centre": centre, "crop_intrinsics": intr,
            "identity": torch.randn(b, ki, generator=g), "expression": torch.rand(b, ke, generator=g),
            "quaternion": nn.functional.normalize(torch.randn(b, 4, generator=g), dim=-1),
            "translation": centre + torch.randn(b, 3, generator=g) * 10}


def training_row(preset: str, device: str, mode: str, step: Callable[[], object], target_s: float,
                 min_reps: int, flops_per_image: int | None) -> Row:
    """Time ``step`` (one training iteration on a batch of 16) after one warm-up iteration."""
    sync = cuda_sync if device == "cuda" else (lambda: None)
    first = timed(step, sync)
    times = []
    for _ in range(repeats_for(first, target_s, min_reps, 20)):
        time.sleep(PAUSE_S)
        times.append(timed(step, sync))
    med = statistics.median(times)
    ips = TRAIN_BATCH / med
    g = None if flops_per_image is None else flops_per_image * ips / 1e9
    return Row("training", preset, "torch" if device == "cpu" else "cuda-torch", mode, TRAIN_BATCH, med,
               min(times), len(times), ips, g, times)


def bench_train_pose(preset: str, device: str, flops_f: int, target_s: float, min_reps: int) -> Row:
    """DAPoseNet stage 1: eq. 6 on a random source batch, backward, Adam step."""
    from depthface.models.losses import loss_pose_supervised
    from depthface.train.common import network_input
    from depthface.train.pose import PoseTrainConfig, pose_targets

    cfg = PoseTrainConfig(preset=preset)
    torch.manual_seed(0)
    net = DAPoseNet(NetConfig.preset(preset)).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    batch = random_batch(TRAIN_BATCH, net.cfg.image_size, 1, 1, torch.Generator().manual_seed(1))

    def step() -> None:
        q, t = net(network_input(batch, device))
        loss = loss_pose_supervised(q, t, *pose_targets(batch, device), cfg.alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # forward + backward ~ 3x the forward FLOPs (F dominates; the MLP is negligible)
    return training_row(preset, device, "pose stage 1", step, target_s, min_reps, 3 * flops_f)


def bench_train_shape(preset: str, device: str, model, target_s: float, min_reps: int) -> Row:
    """One full AR-GAN iteration (a source and a target batch) of :class:`ShapeTrainer`."""
    import warnings

    from depthface.train.shape import ShapeTrainConfig, ShapeTrainer

    torch.manual_seed(0)
    tr = ShapeTrainer(ShapeTrainConfig(preset=preset), model, device)
    tr.net.train()
    g = torch.Generator().manual_seed(2)
    size = tr.net_cfg.image_size
    src, tgt = (random_batch(TRAIN_BATCH, size, model.identity_dim, model.expression_dim, g) for _ in range(2))

    def step() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # float(loss) of a tensor needing grad
            tr.step(src, tgt)

    return training_row(preset, device, "shape AR-GAN iter", step, target_s, min_reps, None)


# --------------------------------------------------------------------------------------- report


def best_rows(rows: list[Row]) -> list[dict]:
    """The fastest engine per (preset, mode, batch) among the CPU (and, separately, CUDA) engines."""
    inf = [r for r in rows if r.section == "inference"]
    out = []
    for preset, mode, batch, cuda in sorted({(r.preset, r.mode, r.batch, r.engine.startswith("cuda")) for r in inf}):
        cands = [r for r in inf if (r.preset, r.mode, r.batch) == (preset, mode, batch)
                 and r.engine.startswith("cuda") == cuda]
        best = max(cands, key=lambda r: r.per_s)
        base = next((r for r in cands if r.engine in ("torch", "cuda-torch")), None)
        best_torch = max((r for r in cands if "torch" in r.engine), key=lambda r: r.per_s, default=None)
        out.append({"preset": preset, "mode": mode, "batch": batch, "device": "cuda" if cuda else "cpu",
                    "best_engine": best.engine, "frames_per_s": best.per_s,
                    "best_torch_engine": best_torch.engine if best_torch else None,
                    "best_torch_frames_per_s": best_torch.per_s if best_torch else None,
                    "speedup_vs_torch_nchw": best.per_s / base.per_s if base else None})
    return out


def format_table(rows: list[Row], flops: dict[str, dict[str, int]], machine: dict) -> str:
    """The printed table."""
    lines = [f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, onnxruntime "
             f"{machine['onnxruntime']}, OMP_WAIT_POLICY={machine['omp_wait_policy'] or 'unset'}; torch sgemm "
             f"{machine['sgemm_gflops_before']:.0f} -> {machine['sgemm_gflops_after']:.0f} GFLOP/s, load avg "
             f"{machine['load_before']} -> {machine['load_after']} (before -> after)"]
    for preset, f in flops.items():
        lines.append(f"{preset}: F {f['F'] / 1e9:.3f} GFLOP/frame; pose {f['pose'] / 1e9:.3f}, shape "
                     f"{f['shape'] / 1e9:.3f}, both {f['both'] / 1e9:.3f} GFLOP/frame")
    head = (f"{'section':<9} {'preset':<6} {'engine':<13} {'mode':<17} {'batch':>5} {'ms/call':>9} "
            f"{'min ms':>9} {'ms/frame':>9} {'frames/s':>9} {'GFLOP/s':>7} {'reps':>4}")
    lines += [head, "-" * len(head)]
    for r in rows:
        g = "" if r.gflops_per_s is None else f"{r.gflops_per_s:.0f}"
        lines.append(f"{r.section:<9} {r.preset:<6} {r.engine:<13} {r.mode:<17} {r.batch:>5} "
                     f"{r.median_s * 1e3:>9.1f} {r.min_s * 1e3:>9.1f} {r.median_s / r.batch * 1e3:>9.2f} "
                     f"{r.per_s:>9.1f} {g:>7} {r.repeats:>4}")
    return "\n".join(lines)


def format_best(best: list[dict]) -> str:
    lines = ["best engine per case (median frames/s; x = vs torch NCHW no_grad):"]
    for b in best:
        s = "" if b["speedup_vs_torch_nchw"] is None else f" (x{b['speedup_vs_torch_nchw']:.2f})"
        lines.append(f"  {b['device']:<4} {b['preset']:<6} {b['mode']:<6} batch {b['batch']:>2}: "
                     f"{b['best_engine']:<12} {b['frames_per_s']:8.1f}{s}; best torch {b['best_torch_engine']} "
                     f"{b['best_torch_frames_per_s']:.1f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/inference.json"))
    ap.add_argument("--presets", nargs="+", default=["paper", "small"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--target-s", type=float, default=1.0, help="time to aim for per case (all its repeats)")
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--no-train", action="store_true", help="skip the training rows")
    ap.add_argument("--threads", type=int, default=None, help="torch and ORT threads (default: the cores)")
    ap.add_argument("--engines", nargs="+", default=None, help="only these inference engines (default: all)")
    ap.add_argument("--max-rounds", type=int, default=15, help="most rounds per (preset, batch)")
    return ap.parse_args(argv)


def run_inference(args: argparse.Namespace, nets: dict, flops: dict, cores: int,
                  log: Callable[[str], None]) -> list[Row]:
    """Export the graphs, build the engines, and measure every (preset, batch) round-robin."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="depthface-bench-") as tmp:
        paths = {p: export_pair(*nets[p], Path(tmp), p) for p in args.presets}
        log("exported and verified the ONNX graphs")
        engines = build_engines(nets, paths, cores)
        for p in args.presets:
            for b in args.batches:
                chosen = [e for e in engines[p] if args.engines is None or e.name in args.engines]
                rows += bench_round_robin(chosen, p, b, nets[p][0].cfg.image_size, flops[p], args.target_s,
                                          args.min_reps, args.max_rounds)
                log(f"inference {p} batch {b}")
            del engines[p]
    return rows


def run_training(args: argparse.Namespace, flops: dict, face, log: Callable[[str], None]) -> list[Row]:
    """Pose stage-1 and shape AR-GAN iterations for every preset (and on CUDA when available)."""
    rows: list[Row] = []
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for p in args.presets:
            rows.append(bench_train_pose(p, device, flops[p]["F"], args.target_s, args.min_reps))
            rows.append(bench_train_shape(p, device, face, args.target_s, 2))
            log(f"training {device} {p}")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from depthface.facemodel import load_face_model
    from depthface.models.export import cpu_count

    cores = args.threads or cpu_count()
    torch.set_num_threads(cores)
    log = StageLog()
    machine = machine_info(cores)
    machine["sgemm_gflops_before"] = sgemm_gflops()
    face = load_face_model()
    n_vertices = int(face.regressed_vertices.numel())
    nets = {p: make_nets(p, n_vertices) for p in args.presets}
    flops = {p: flops_per_frame(*nets[p]) for p in args.presets}
    rows = run_inference(args, nets, flops, cores, log)
    if not args.no_train:
        rows += run_training(args, flops, face, log)
    machine["sgemm_gflops_after"] = sgemm_gflops()
    machine["load_after"] = round(os.getloadavg()[0], 2)
    machine["total_s"] = round(log.elapsed(), 1)
    best = best_rows(rows)
    print(format_table(rows, flops, machine))
    print(format_best(best))
    print(f"total {machine['total_s']} s")
    write_report(args.out, {"command": command_line(), "machine": machine, "flops_per_frame": flops,
                            "rows": [asdict(r) for r in rows], "best": best})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
