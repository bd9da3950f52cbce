"""Reproducible experiments: the paper's Table 5 and ablations on our synthetic/simulated domains.

Each experiment is one library function (``depthface experiment ...`` calls it): it synthesises its data
(or reuses it), trains, evaluates and writes ``table.md`` + ``results.json`` + plots into its output
directory. Every step resumes. :func:`pose_table` (Table 5), :func:`shape_table` (DASHapeNet ablations,
Fig. 7 and 9) and :func:`pose_diagnostics` (domain gap by simulator component, eq. 7 minimised directly)
are the experiments; :func:`icp_on_dataset`, :func:`shape_baseline_on_dataset` and
:func:`fit_eq7_directly` are their per-dataset loops and are usable on their own.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import roma
import torch

from depthface.evaluation.baselines import icp_pose
from depthface.evaluation.pose import plot_pose_errors, pose_errors, predict_pose_dataset, summarize, write_pose_csv
from depthface.facemodel import MorphableModel
from depthface.geometry.rotations import quaternion_to_matrix
from depthface.synth.datasets import SourceDataset
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import hole_fills
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import generate
from depthface.train.common import network_input, write_json
from depthface.train.pose import PoseTrainConfig, load_pose_net, train_pose

__all__ = ["make_domains", "icp_on_dataset", "pose_table", "shape_baseline_on_dataset", "shape_table",
           "SENSOR_VARIANTS", "fit_eq7_directly", "pose_diagnostics"]


def make_domains(out: Path, model: MorphableModel, source_frames: int, target_frames: int, seed: int = 0,
                 profile: str = "syndata2", workers: int = 1) -> tuple[Path, Path]:
    """A clean labelled source set and a simulated-Kinect target set (other identities: another seed).

    Returns:
        ``(source, target)``: the dataset directories ``out/source`` and ``out/target`` (resumed if they exist).
    """
    prof = get_profile(profile)
    src = generate(out / "source", prof.scaled(count=source_frames), seed, model, None, workers=workers)
    tgt_prof = prof.scaled(count=target_frames)
    tgt = generate(out / "target", tgt_prof, seed + 1000, model, SensorProfile.preset("kinect_v1"), workers=workers)
    return src, tgt


def icp_on_dataset(ds: SourceDataset, model: MorphableModel, n_points: int = 1000) -> tuple[dict[str, np.ndarray], float]:
    """The ICP baseline (:func:`depthface.evaluation.baselines.icp_pose` on the narrow face region) on every
    frame of a labelled dataset.

    Returns:
        ``(errors, seconds_per_frame)``: :func:`~depthface.evaluation.pose.pose_errors` (arrays ``(N,)``) and
        the mean time per frame.
    """
    from depthface.facemodel.fit import prepare_fit_region

    pts = prepare_fit_region(model, "narrow", n_points)
    Rp, tp, Rt, tt = [], [], [], []
    t0 = time.perf_counter()
    for i in range(len(ds)):
        item = ds[i]
        R, t, _ = icp_pose(item["position"].double().numpy(), pts, item["crop_centre"].double().numpy())
        Rp.append(R)
        tp.append(t)
        Rt.append(quaternion_to_matrix(item["quaternion"].double()).numpy())
        tt.append(item["translation"].double().numpy())
    secs = (time.perf_counter() - t0) / max(len(ds), 1)
    return pose_errors(np.stack(Rp), np.stack(tp), np.stack(Rt), np.stack(tt)), secs


def pose_table(out: str | Path, model: MorphableModel, source_frames: int = 4000, target_frames: int = 2000,
               epochs1: int = 10, epochs2: int = 5, preset: str = "small", batch_size: int = 16, seed: int = 0,
               workers: int = 1, device: str | None = None, icp_frames: int = 300,
               stage2_source_weight: float = 0.0, visible_landmarks_only: bool = False,
               stage2_anchor_weight: float = 0.0) -> dict:
    """Table 5 on our domains: Model-1 (eq. 6 on source), Model-2 (eq. 7 on target only), Model-3 (both),
    and rigid ICP, all tested on simulated-Kinect frames of unseen identities.

    Writes ``table.md``, ``results.json``, ``error_vs_angle.png`` and per-frame CSVs into ``out`` and prints
    the table. Returns the summary per model (:func:`~depthface.evaluation.pose.summarize` + ``ms_per_frame``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src, tgt = make_domains(out / "data", model, source_frames, target_frames, seed, workers=workers)
    cfg = PoseTrainConfig(preset=preset, epochs1=epochs1, epochs2=epochs2, batch_size=batch_size, seed=seed,
                          stage2_source_weight=stage2_source_weight, visible_landmarks_only=visible_landmarks_only,
                          stage2_anchor_weight=stage2_anchor_weight)
    m3 = train_pose(src, tgt, out / "model3", cfg, model, stage="both", device=device)
    # Model-2 has no stage 1 to anchor to
    m2 = train_pose(None, tgt, out / "model2", replace(cfg, stage2_anchor_weight=0.0), model, stage="2", device=device)
    test = SourceDataset(tgt, "test")
    results, errors = {}, {}
    for name, ck in (("Model-1", m3 / "stage1.pt"), ("Model-2", m2 / "checkpoint.pt"), ("Model-3", m3 / "checkpoint.pt")):
        net, _ = load_pose_net(ck)
        pred = predict_pose_dataset(net, test, device="cpu")
        e = pose_errors(pred["R_pred"], pred["t_pred"], pred["R_true"], pred["t_true"])
        write_pose_csv(out / f"{name.lower()}_frames.csv", pred["index"], e)
        errors[name] = e
        results[name] = {**summarize(e), "ms_per_frame": float(pred["seconds_per_frame"]) * 1e3}
    sub = torch.utils.data.Subset(test, np.linspace(0, len(test) - 1, min(icp_frames, len(test))).astype(int).tolist())
    e, secs = icp_on_dataset(sub, model)  # type: ignore[arg-type]
    errors["ICP"] = e
    results["ICP"] = {**summarize(e), "ms_per_frame": secs * 1e3}
    plot_pose_errors(out / "error_vs_angle.png", errors)
    meta = {"source_frames": source_frames, "target_frames": target_frames, "test_frames": len(test),
            "stage2_source_weight": stage2_source_weight, "visible_landmarks_only": visible_landmarks_only,
            "stage2_anchor_weight": stage2_anchor_weight,
            "epochs1": epochs1, "epochs2": epochs2, "preset": preset, "batch_size": batch_size, "seed": seed}
    write_json(out / "results.json", {"config": meta, "results": results})
    lines = ["| model | training | pitch | yaw | roll | MAE | translation (mm) | ms/frame |", "|---|---|---|---|---|---|---|---|"]
    stage2 = "eq. 7" + (" (visible landmarks)" if visible_landmarks_only else "")
    m3_what = (f"eq. 6 then {stage2}" + (f" + {stage2_source_weight:g} x eq. 6 on source" if stage2_source_weight else "")
               + (f" + {stage2_anchor_weight:g} x stage-1 anchor" if stage2_anchor_weight else ""))
    what = {"Model-1": "eq. 6, synthetic", "Model-2": f"{stage2}, target only", "Model-3": m3_what,
            "ICP": "rigid point-to-plane ICP"}
    for name, r in results.items():
        lines.append(f"| {name} | {what[name]} | {r['pitch']:.2f} | {r['yaw']:.2f} | {r['roll']:.2f} | {r['mae']:.2f} | "
                     f"{r['translation_mm']:.1f} | {r['ms_per_frame']:.1f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return results


def shape_baseline_on_dataset(ds: SourceDataset, model: MorphableModel, indices: list[int],
                              n_points: int = 1000) -> tuple[list[dict], float, list[np.ndarray]]:
    """The 3DMM-fit baseline (ICP pose, then coefficients + pose) on the samples ``indices`` of ``ds``.

    Returns:
        ``(errors, seconds_per_frame, meshes)``: one :func:`~depthface.evaluation.shape.shape_errors` record
        (with ``index``) per sample, the mean time per sample, and the fitted meshes ``(V, 3)`` (head frame, mm).
    """
    from depthface.evaluation.baselines import fit_3dmm
    from depthface.evaluation.shape import shape_errors
    from depthface.facemodel.fit import prepare_fit_region

    region = prepare_fit_region(model, "narrow", n_points)
    out, meshes = [], []
    t0 = time.perf_counter()
    for i in indices:
        item = ds[i]
        pos = item["position"].double().numpy()
        R0, t0_, _ = icp_pose(pos, region, item["crop_centre"].double().numpy())
        fit = fit_3dmm(pos, region, R0, t0_)
        pred = torch.from_numpy(fit.vertices).double()[None]
        true = model.vertices(item["identity"][None], item["expression"][None]).double()
        out.append({"index": int(item["index"]), **shape_errors(model.to(dtype=torch.float64), pred, true)[0]})
        meshes.append(fit.vertices)
    return out, (time.perf_counter() - t0) / max(len(indices), 1), meshes


def shape_table(out: str | Path, model: MorphableModel, target_frames: int = 1500, source_multiple: int = 3,
                epochs: int = 6, lr_step_epochs: int = 2, preset: str = "small", lambda1s: tuple[float, ...] = (0.003, 0.3),
                amounts: tuple[int, ...] = (1, 2), seed: int = 0, workers: int = 1, device: str | None = None,
                baseline_frames: int = 30) -> dict:
    """DASHapeNet on our domains: source-only vs AR-GAN, the synthetic-amount ablation (Fig. 7), the lambda1
    sweep (Fig. 9), and the 3DMM-fit baseline; all tested on simulated-Kinect frames of unseen identities
    of the FaceWarehouse-like profile (SynData1).

    Writes ``table.md``, ``results.json``, mesh renders and ``per_sample_eq8.png`` into ``out`` and prints
    the table. Returns the summary per run (:func:`~depthface.evaluation.shape.summarize_shape` + settings).
    """
    from depthface.evaluation.plots import save_mesh_sheet
    from depthface.evaluation.shape import evaluate_shape_dataset, face_vertices, summarize_shape
    from depthface.evaluation.shape_eval import plot_per_sample_errors
    from depthface.train.shape import ShapeTrainConfig, load_shape_net, train_shape

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prof = get_profile("syndata1")
    tgt = generate(out / "data" / "target", prof.scaled(count=target_frames), seed + 1000, model,
                   SensorProfile.preset("kinect_v1"), workers=workers)
    n_target_train = len(SourceDataset(tgt, "train"))
    src = generate(out / "data" / "source", prof.scaled(count=int(source_multiple * n_target_train * 1.25)), seed, model,
                   None, workers=workers)
    n_source_train = len(SourceDataset(src, "train"))
    base = ShapeTrainConfig(preset=preset, epochs=epochs, lr_step_epochs=lr_step_epochs, seed=seed,
                            source_limit=min(n_source_train, source_multiple * n_target_train))
    runs = {"source-only": replace(base, lambda1=0.0, lambda2=0.0), "AR-GAN": base}
    for a in amounts:
        runs[f"AR-GAN, synthetic {a}x"] = replace(base, source_limit=a * n_target_train)
    for l1 in lambda1s:
        runs[f"AR-GAN, lambda1={l1:g}"] = replace(base, lambda1=l1)
    test = SourceDataset(tgt, "test")
    rng = np.random.default_rng(seed)
    sample30 = sorted(rng.choice(len(test), size=min(baseline_frames, len(test)), replace=False).tolist())
    shown = torch.utils.data.default_collate([test[i] for i in sample30[:3]])  # the pictured samples, read once
    results, per_sample, meshes = {}, {}, {}
    for name, cfg in runs.items():
        run = out / ("run_" + "".join(ch if ch.isalnum() else "_" for ch in name))
        train_shape(src, tgt if cfg.lambda1 or cfg.lambda2 else None, run, cfg, model, device=device)
        net, _ = load_shape_net(run)
        errs, spf = evaluate_shape_dataset(net, model, test)
        results[name] = {**summarize_shape(errs), "ms_per_frame": spf * 1e3, "source_frames": cfg.source_limit,
                         "lambda1": cfg.lambda1, "lambda2": cfg.lambda2}
        per_sample[name] = [errs[i]["mean_squared_mm2"] for i in sample30]
        with torch.no_grad():
            meshes[name] = face_vertices(model, net(network_input(shown, "cpu"))).numpy()
    errs, spf, fit_meshes = shape_baseline_on_dataset(test, model, sample30)
    results["3DMM fit"] = {**summarize_shape(errs), "ms_per_frame": spf * 1e3, "note": f"on {len(sample30)} samples"}
    per_sample["3DMM fit"] = [e["mean_squared_mm2"] for e in errs]
    meshes["3DMM fit"] = np.stack(fit_meshes[:3])
    true = model.vertices(shown["identity"], shown["expression"]).numpy()
    tri = model.triangles.numpy()
    mean = model.mean.double().numpy()
    fills = hole_fills(mean, tri, mean[model.landmarks68.numpy()])
    for k in range(min(3, len(sample30))):
        names = ["ground truth", *meshes]
        save_mesh_sheet(out / f"meshes_sample{k}.png", [true[k], *(meshes[n][k] for n in meshes)], tri, names, fills)
    plot_per_sample_errors(out / "per_sample_eq8.png", per_sample)
    meta = {"target_frames": target_frames, "target_train": n_target_train, "source_train": n_source_train,
            "test_frames": len(test), "epochs": epochs, "preset": preset, "seed": seed, "eps_mm": 10.0}
    write_json(out / "results.json", {"config": meta, "results": results, "per_sample_eq8": per_sample})
    lines = ["| model | synthetic frames | lambda1 | lambda2 | eq. 8 mean (mm²) | eq. 8 var | RMS (mm) | flying / sample | ms/frame |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r.get('source_frames', '-')} | {r.get('lambda1', '-')} | {r.get('lambda2', '-')} | "
                     f"{r['eq8_mean_mm2']:.3f} | {r['eq8_var']:.4f} | {r['rms_mm']:.2f} | "
                     f"{r['flying_pred'] + r['flying_gt']:.1f} | {r['ms_per_frame']:.1f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return results


#: the target-domain variants of :func:`pose_diagnostics`: which parts of the Kinect simulation are on
SENSOR_VARIANTS: dict[str, dict | None] = {
    "clean": None,
    "kinect": {},
    "kinect without hair": {"hair_probability": 0.0},
    "kinect without wall/boxes": {"wall_probability": 0.0, "box_count": (0, 0)},
    "kinect without noise/holes": {"depth_noise_coeff": 0.0, "angle_noise_coeff_m": 0.0, "lateral_noise_px": 0.0,
                                   "lateral_noise_angle_px": 0.0, "holes_per_frame": 0.0,
                                   "flying_pixel_probability": 0.0, "edge_dropout": (0.0, 0.0)},
}


def fit_eq7_directly(R0: torch.Tensor, t0: torch.Tensor, reference: torch.Tensor, normals: torch.Tensor,
                     clouds: list[torch.Tensor], visible_only: bool, steps: int = 300, eps_mm: float = 30.0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise eq. 7 over each frame's pose itself (no network), from ``(R0 (B, 3, 3), t0 (B, 3))``.

    Adam on an axis-angle correction (``roma.rotvec_to_rotmat``) and a translation correction per frame.
    What it converges to shows the objective's own minimum near the truth (started there) and its basin
    (started from a network).

    Args:
        R0: ``(B, 3, 3)`` starting rotations (head to camera).
        t0: ``(B, 3)`` starting head centres (mm).
        reference: ``(L, 3)`` landmarks of the mean face in the head frame (mm).
        normals: ``(L, 3)`` their outward unit normals (head frame).
        clouds: ``B`` measured point clouds ``(M_b, 3)`` (mm, camera frame).
        visible_only: eq. 7 on the landmarks facing the camera only.
        steps: Adam steps.
        eps_mm: the Chamfer truncation of eq. 7 (mm).

    Returns:
        ``(R (B, 3, 3), t (B, 3))`` float64.
    """
    from depthface.geometry.chamfer import landmark_chamfer

    w = torch.zeros(len(R0), 3, dtype=torch.float64, requires_grad=True)
    dt = torch.zeros(len(R0), 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w, dt], lr=0.01)
    ref, nrm = reference.double(), normals.double()
    for _ in range(steps):
        R = roma.rotvec_to_rotmat(w) @ R0.double()
        t = t0.double() + 10.0 * dt  # 0.1 mm per unit of lr: translations in cm-ish steps
        lm = ref @ R.transpose(1, 2) + t[:, None]
        mask = ((nrm @ R.transpose(1, 2)) * lm).sum(-1).detach() < 0 if visible_only else None
        loss, _ = landmark_chamfer(lm, clouds, eps_mm, mask=mask)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        return roma.rotvec_to_rotmat(w) @ R0.double(), t0.double() + 10.0 * dt


def pose_diagnostics(run: str | Path, model: MorphableModel, frames: int = 300, seed: int = 5000,
                     workers: int = 1, basin_frames: int = 120) -> dict:
    """Why stage 2 helps or not, measured on a finished ``pose-table`` run (its ``model3`` directory).

    1. **Domain gap by simulator component**: Model-1 and Model-3 on ``frames`` new target scenes (unseen
       identities, seed ``seed``) rendered clean, through the full Kinect simulation, and through it with
       one component switched off (:data:`SENSOR_VARIANTS`).
    2. **Eq. 7 on its own**: eq. 7 minimised over each frame's pose directly (:func:`fit_eq7_directly`),
       started at the true pose and at Model-1's prediction, with all 68 and with the visible landmarks.

    Writes ``diagnostics.json`` and ``diagnostics.md`` into ``run``.
    """
    from dataclasses import replace as dc_replace

    from depthface.geometry.rotations import matrix_to_quaternion
    from depthface.geometry.camera import position_points
    from depthface.train.pose import landmark_normals

    run = Path(run)
    nets = {"Model-1": load_pose_net(run / "model3" / "stage1.pt")[0], "Model-3": load_pose_net(run / "model3")[0]}
    prof = get_profile("syndata2").scaled(count=frames)
    kinect = SensorProfile.preset("kinect_v1")
    gap: dict[str, dict] = {}
    batches = {}
    for name, change in SENSOR_VARIANTS.items():
        sensor = None if change is None else dc_replace(kinect, **change)
        root = generate(run / "diagnostics" / name.replace(" ", "_").replace("/", "_"), prof, seed, model, sensor,
                        workers=workers, progress=False)
        ds = SourceDataset(root, None)
        batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
        batches[name] = batch
        gap[name] = {}
        for m, net in nets.items():
            with torch.no_grad():
                q, t = net.eval()(network_input(batch, "cpu"))
            e = pose_errors(quaternion_to_matrix(q.double()).numpy(), (t.double() + batch["crop_centre"].double()).numpy(),
                            quaternion_to_matrix(batch["quaternion"].double()).numpy(), batch["translation"].double().numpy())
            gap[name][m] = summarize(e)
    # eq. 7 directly, on the full Kinect variant
    b = batches["kinect"]
    pick = np.linspace(0, frames - 1, min(basin_frames, frames)).astype(int)
    clouds = position_points(b["position"][pick], 4000)
    reference = model.landmarks(model.mean[None])[0].double()
    normals = landmark_normals(model).double()
    R_true = quaternion_to_matrix(b["quaternion"][pick].double())
    t_true = b["translation"][pick].double()
    with torch.no_grad():
        q1, t1 = nets["Model-1"](network_input({k: v[pick] for k, v in b.items()}, "cpu"))
    starts = {"true pose": (R_true, t_true),
              "Model-1": (quaternion_to_matrix(q1.double()), t1.double() + b["crop_centre"][pick].double())}
    basin: dict[str, dict] = {}
    for start, (R0, t0) in starts.items():
        basin[f"start: {start}"] = summarize(pose_errors(R0.numpy(), t0.numpy(), R_true.numpy(), t_true.numpy()))
        for vis in (False, True):
            R, t = fit_eq7_directly(R0, t0, reference, normals, clouds, vis)
            R = quaternion_to_matrix(matrix_to_quaternion(R))  # re-orthonormalise
            key = f"eq. 7 from {start}, {'visible' if vis else 'all 68'} landmarks"
            basin[key] = summarize(pose_errors(R.numpy(), t.numpy(), R_true.numpy(), t_true.numpy()))
    write_json(run / "diagnostics.json", {"frames": frames, "seed": seed, "basin_frames": len(pick),
                                          "domain_gap": gap, "eq7_direct": basin})
    lines = ["| target frames | Model-1 MAE (yaw/pitch/roll) | Model-3 MAE (yaw/pitch/roll) |", "|---|---|---|"]
    fmt = lambda s: f"{s['mae']:.2f} ({s['yaw']:.1f}/{s['pitch']:.1f}/{s['roll']:.1f})"  # noqa: E731
    lines += [f"| {name} | {fmt(r['Model-1'])} | {fmt(r['Model-3'])} |" for name, r in gap.items()]
    lines += ["", "| pose | MAE (yaw/pitch/roll) | translation (mm) |", "|---|---|---|"]
    lines += [f"| {name} | {fmt(s)} | {s['translation_mm']:.1f} |" for name, s in basin.items()]
    (run / "diagnostics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return {"domain_gap": gap, "eq7_direct": basin}
