"""``make demo``: the whole story on the built-in default face model, small enough for 2 CPU cores.

1. sample identities and expressions of the face model, write meshes and a picture;
2. synthesise a clean labelled source set and a simulated-Kinect target set (other identities), and show the
   **release models** that ship with depthface on the target frames (accuracy, overlays, meshes: truth, mean
   face and prediction side by side) — what a user gets without training;
3. train DAPoseNet (eq. 6, then eq. 7 on the target set) and DASHapeNet (AR-GAN and source-only);
4. evaluate on target frames of unseen identities, with the source-only models beside the adapted ones;
5. run ``predict``'s path on a few target frames and on a frame exported in the Biwi layout;
6. write ``report.html`` with the curves, histograms, renders, overlays and numbers.

Every step resumes: run it again after an interruption and finished steps are skipped.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from depthface.data.biwi import BiwiDataset, write_biwi_depth_calibration, write_biwi_frame
from depthface.evaluation.plots import save_mesh_sheet
from depthface.inference.pictures import save_overlay
from depthface.evaluation.pose import plot_pose_errors, pose_errors, predict_pose_dataset, summarize
from depthface.evaluation.report import (POSE_GUIDE, SHAPE_GUIDE, MeanFaceNet, ci_rows, dataset_contact_sheet,
                                         frontal_pose_errors, html_table, plot_histograms, plot_loss_curves,
                                         pose_metrics, shape_metrics, write_html_report)
from depthface.evaluation.shape import evaluate_shape_dataset, summarize_shape
from depthface.facemodel import load_face_model
from depthface.geometry.camera import Intrinsics
from depthface.geometry.rotations import quaternion_to_matrix
from depthface.inference import Reconstructor
from depthface.synth.datasets import SourceDataset
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import hole_fills
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import ChunkedArrays, generate, iter_full_frames
from depthface.train.pose import PoseTrainConfig, load_pose_net, train_pose
from depthface.train.shape import ShapeTrainConfig, load_shape_net, train_shape

#: sizes of the demo (333 s in all on 2 CPU cores from a fresh clone, with the release section; measured)
DEMO = {"source_frames": 1200, "target_frames": 600, "preset": "tiny", "pose_epochs": (6, 3), "shape_epochs": 4}


def _say(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)


def run_demo(out: Path, face_model: Path | None = None, seed: int = 0, sizes: dict | None = None) -> Path:
    """Run the demo into ``out``; returns the report's path."""
    cfg = {**DEMO, **(sizes or {})}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = load_face_model(face_model)
    _say(f"face model: {model.name} ({model.num_vertices} vertices, {model.identity_dim} identity modes, "
         f"{model.expression_dim} expressions) from {model.source}", t0)

    mean = model.mean.double().numpy()
    fills = hole_fills(mean, model.triangles.numpy(), mean[model.landmarks68.numpy()])
    # 1. meshes of sampled identities and expressions
    ids = model.sample_identity(4, torch.Generator().manual_seed(seed))
    expr = torch.zeros(4, model.expression_dim)
    names = list(model.expression_names)
    for row, combo in enumerate([{}, {"mouthSmile_L": 0.8, "mouthSmile_R": 0.8}, {"jawOpen": 0.6},
                                 {"browInnerUp_L": 0.9, "browInnerUp_R": 0.9, "eyeBlink_L": 1.0}]):
        for k, w in combo.items():
            expr[row, names.index(k)] = w
    verts = model.vertices(ids, expr)
    (out / "meshes").mkdir(exist_ok=True)
    for i in range(len(verts)):
        model.export_mesh(verts[i], out / "meshes" / f"sample_{i}.ply")
    save_mesh_sheet(out / "meshes.png", [v.numpy() for v in verts], model.triangles.numpy(),
                    ["identity 0, neutral", "identity 1, smile", "identity 2, jaw open", "identity 3, brows up + blink"],
                    fills)
    _say(f"wrote 4 meshes to {out / 'meshes'} and {out / 'meshes.png'}", t0)

    # 2. data
    prof = get_profile("syndata2")
    src = generate(out / "data" / "source", prof.scaled(count=cfg["source_frames"]), seed, model, None)
    tgt = generate(out / "data" / "target", prof.scaled(count=cfg["target_frames"]), seed + 1000, model,
                   SensorProfile.preset("kinect_v1"))
    dataset_contact_sheet(src, out / "source_crops.png", n=16, title="source: clean synthetic frames (SynData2-like)")
    dataset_contact_sheet(tgt, out / "target_crops.png", n=16, title="target: simulated Kinect v1 frames")
    _say(f"synthesised {src} and {tgt}", t0)
    release = _release_section(out, tgt, model, fills, t0)

    # 3. training
    e1, e2 = cfg["pose_epochs"]
    pose_run = train_pose(src, tgt, out / "pose", PoseTrainConfig(preset=cfg["preset"], epochs1=e1, epochs2=e2,
                                                                   seed=seed, max_cloud_points=4096), model)
    _say(f"trained DAPoseNet: {pose_run}", t0)
    scfg = ShapeTrainConfig(preset=cfg["preset"], epochs=cfg["shape_epochs"], lr_step_epochs=max(1, cfg["shape_epochs"] // 3),
                            seed=seed)
    shape_run = train_shape(src, tgt, out / "shape", scfg, model)
    shape_src_run = train_shape(src, None, out / "shape_source_only", replace(scfg, lambda1=0.0, lambda2=0.0), model)
    _say(f"trained DASHapeNet (AR-GAN: {shape_run}; source-only: {shape_src_run})", t0)

    # 4. evaluation on target frames of unseen identities
    test = SourceDataset(tgt, "test")
    pose_res, pose_err = {}, {}
    for name, ck in (("source-only (Model-1)", pose_run / "stage1.pt"), ("adapted (Model-3)", pose_run / "checkpoint.pt")):
        p = predict_pose_dataset(load_pose_net(ck)[0], test, progress=False)
        pose_err[name] = pose_errors(p["R_pred"], p["t_pred"], p["R_true"], p["t_true"])
        pose_res[name] = summarize(pose_err[name])
    crop_centres = np.stack([ChunkedArrays(tgt).get(int(i), "crop_centre") for i in p["index"]])
    frontal = frontal_pose_errors(crop_centres, p["R_true"], p["t_true"])  # the reference of a network that learned nothing
    plot_pose_errors(out / "pose_error_vs_angle.png", pose_err)
    plot_histograms(out / "pose_error_hist.png", {k: np.mean([e["yaw_err"], e["pitch_err"], e["roll_err"]], 0)
                                                  for k, e in pose_err.items()}, "mean abs. angle error per frame (deg)")
    shape_res, shape_err = {}, {}
    mean_face_errs, _ = evaluate_shape_dataset(MeanFaceNet(int(model.regressed_vertices.numel())), model, test,
                                               progress=False)
    shape_per_frame = {"mean face (reference)": shape_metrics(mean_face_errs)}
    for name, run in (("source-only", shape_src_run), ("AR-GAN", shape_run)):
        errs, spf = evaluate_shape_dataset(load_shape_net(run)[0], model, test, progress=False)
        shape_per_frame[name] = shape_metrics(errs)
        shape_err[name] = np.array([e["rms_mm"] for e in errs])
        shape_res[name] = {**summarize_shape(errs), "ms_per_frame": spf * 1e3}
    plot_histograms(out / "shape_error_hist.png", shape_err, "per-vertex RMS after rigid alignment (mm)")
    _say("evaluated: " + json.dumps({k: round(v["mae"], 2) for k, v in pose_res.items()}) + " deg MAE; "
         + json.dumps({k: round(v["rms_mm"], 2) for k, v in shape_res.items()}) + " mm RMS", t0)
    hist_pose = [{**h, f"eq. {6 if h['stage'] == 1 else 7} (stage {h['stage']})": h["loss"]}
                 for h in json.loads((pose_run / "history.json").read_text())]
    hist_shape = json.loads((shape_run / "history.json").read_text())
    plot_loss_curves(out / "loss_curves.png", {"DAPoseNet": hist_pose, "DASHapeNet (AR-GAN)": hist_shape},
                     {"DAPoseNet": ["eq. 6 (stage 1)", "eq. 7 (stage 2)"], "DASHapeNet (AR-GAN)": ["L_R", "L_D", "L_G", "L_Dadv_t"]})

    # 5. predict on full target frames and on a frame exported in the Biwi layout
    rec = Reconstructor.from_checkpoints(pose_run, shape_run, face_model)
    arrays = ChunkedArrays(tgt)
    k_full = Intrinsics(**arrays.manifest["intrinsics"])
    overlays, renders, pred_rows = [], [], []
    biwi_dir = out / "biwi_export" / "hpdb" / "01"
    for i, frame in list(iter_full_frames(tgt))[:4]:
        res = rec.predict(frame.astype(np.float32), k_full, source=f"target frame {i}")
        true_R = quaternion_to_matrix(torch.from_numpy(arrays.get(i, "quaternion")).double()).numpy()
        if i == 0:
            write_biwi_depth_calibration(biwi_dir, k_full)
            write_biwi_frame(biwi_dir, 3, frame, true_R, arrays.get(i, "translation").astype(np.float64))
        if res.rotation is None:
            pred_rows.append({"frame": f"target {i}", "verdict": res.reason})
            continue
        png = out / f"overlay_target_{i}.png"
        save_overlay(png, frame, k_full, res.vertices_camera, res.landmarks2d, res.rotation, res.translation,
                     f"target frame {i}: predicted yaw {res.ypr[0]:+.1f} pitch {res.ypr[1]:+.1f} roll {res.ypr[2]:+.1f}; "
                     f"true {arrays.get(i, 'ypr')[0]:+.1f} {arrays.get(i, 'ypr')[1]:+.1f} {arrays.get(i, 'ypr')[2]:+.1f}",
                     scale=2, colorbar=True)
        overlays.append(png.name)
        pred_rows.append({"frame": f"target {i}", "verdict": "face" if res.found else "no face",
                          "confidence": res.confidence, "pred yaw": float(res.ypr[0]), "true yaw": float(arrays.get(i, "ypr")[0]),
                          "pred pitch": float(res.ypr[1]), "true pitch": float(arrays.get(i, "ypr")[1])})
        if len(renders) < 2:
            true_v = model.vertices(torch.from_numpy(arrays.get(i, "identity"))[None],
                                    torch.from_numpy(arrays.get(i, "expression"))[None])[0].numpy()
            sheet = out / f"mesh_views_target_{i}.png"
            save_mesh_sheet(sheet, [true_v, res.vertices_head], model.triangles.numpy(),
                            [f"target frame {i}: ground truth", "DASHapeNet (AR-GAN) prediction"], fills)
            renders.append(sheet.name)
    biwi = BiwiDataset(out / "biwi_export")
    fr = biwi[0]
    res = rec.predict(fr.depth, fr.intrinsics, source=str(fr.source))
    if res.rotation is not None:
        save_overlay(out / "overlay_biwi_export.png", fr.depth, fr.intrinsics, res.vertices_camera, res.landmarks2d,
                     res.rotation, res.translation, f"Biwi-layout export read back: predicted yaw {res.ypr[0]:+.1f}, "
                     f"true {fr.ypr[0]:+.1f}", scale=2, colorbar=True)
        overlays.append("overlay_biwi_export.png")
    pred_rows.append({"frame": "Biwi export", "verdict": "face" if res.found else "no face", "confidence": res.confidence,
                      "pred yaw": float(res.ypr[0]) if res.ypr is not None else "", "true yaw": float(fr.ypr[0])})
    _say("ran predict on 4 target frames and a Biwi-layout export", t0)

    # 6. report
    pose_cols = ["yaw", "pitch", "roll", "mae", "geodesic", "translation_mm"]
    pose_rows = ci_rows({"frontal (reference)": pose_metrics(frontal),
                         **{k: pose_metrics(e) for k, e in pose_err.items()}}, pose_cols)
    shape_cols = ["rms_mm", "eq8_mean_mm2", "mean_distance_mm"]
    shape_rows = ci_rows(shape_per_frame, shape_cols)
    for row in shape_rows:
        row["ms/frame"] = shape_res[row["model"]]["ms_per_frame"] if row["model"] in shape_res else ""
    scale = (f"<p>Scale: {cfg['source_frames']} source and {cfg['target_frames']} target frames, network preset "
             f"<code>{cfg['preset']}</code>, pose {e1}+{e2} epochs, shape {cfg['shape_epochs']} epochs, tested on the "
             f"{len(test)} target frames of unseen identities. A demo, not the paper's schedule: see README for the "
             f"full-size commands and tables.</p>")
    report = write_html_report(out / "report.html", "depthface demo report", [
        release[:3],
        ("Face model", "<p>Sampled identities and expressions of the default face model (ICT-FaceKit).</p>", ["meshes.png"]),
        ("Data", "<p>Source: clean synthetic depth crops. Target: the same kind of scenes through the Kinect v1 "
                 "simulator (hair, torso, background, noise, holes). Dots: the 68 landmarks.</p>",
         ["source_crops.png", "target_crops.png"]),
        ("Training", "<p>Loss curves (log scale).</p>", ["loss_curves.png"]),
        ("Head pose on target frames", scale + html_table(pose_rows, ["model", *pose_cols, "frames"]) + POSE_GUIDE,
         ["pose_error_hist.png", "pose_error_vs_angle.png"]),
        ("Face shape on target frames", html_table(shape_rows, ["model", *shape_cols, "ms/frame", "frames"])
         + SHAPE_GUIDE, ["shape_error_hist.png", *renders]),
        ("Predict", html_table(pred_rows, ["frame", "verdict", "confidence", "pred yaw", "true yaw", "pred pitch",
                                           "true pitch"])
         + "<p>Angles in degrees (yaw, pitch, roll: docs/conventions.md). The confidence (0-1) is the share of the "
           "68 posed landmarks within 15 mm of a measured point, times the head localiser's score; below 0.3 the "
           "verdict is \"no face\". Overlays: depth colours (scale in mm on the right), the projected mesh (white "
           "dots), the 68 landmarks (magenta) and the head's axes (x red, y green, z blue, 100 mm).</p>", overlays),
    ])
    (out / "results.json").write_text(json.dumps({"release": release[3], "pose": pose_res, "shape": shape_res,
                                                  "sizes": cfg}, indent=1,
                                                 default=float) + "\n")
    _say(f"demo finished; open {report}", t0)
    return report


def _release_section(out: Path, tgt: Path, model, fills, t0: float) -> tuple:
    """The release models (``depthface.models.release``) on the demo's target frames of identities no release
    training saw: pose and shape tables with the references, product-path overlays, mesh renders.
    Returns a report section ``(title, html, images, numbers)``."""
    from depthface.models.release import release_checkpoint

    test = SourceDataset(tgt, "test")
    pose_net, _ = load_pose_net(release_checkpoint("pose"))
    shape_net, _ = load_shape_net(release_checkpoint("shape"))
    p = predict_pose_dataset(pose_net, test, progress=False)
    err = pose_errors(p["R_pred"], p["t_pred"], p["R_true"], p["t_true"])
    crop_centres = np.stack([ChunkedArrays(tgt).get(int(i), "crop_centre") for i in p["index"]])
    frontal = frontal_pose_errors(crop_centres, p["R_true"], p["t_true"])
    pose_cols = ["yaw", "pitch", "roll", "mae", "geodesic", "translation_mm"]
    pose_rows = ci_rows({"frontal (reference)": pose_metrics(frontal), "release pose model": pose_metrics(err)},
                        pose_cols)
    mean_errs, _ = evaluate_shape_dataset(MeanFaceNet(int(model.regressed_vertices.numel())), model, test, progress=False)
    errs, spf = evaluate_shape_dataset(shape_net, model, test, progress=False)
    shape_cols = ["rms_mm", "eq8_mean_mm2", "mean_distance_mm"]
    shape_rows = ci_rows({"mean face (reference)": shape_metrics(mean_errs), "release shape model": shape_metrics(errs)},
                         shape_cols)
    rec = Reconstructor()
    arrays = ChunkedArrays(tgt)
    k_full = Intrinsics(**arrays.manifest["intrinsics"])
    images = []
    mean = model.mean.double().numpy()
    for i, frame in iter_full_frames(tgt):  # every person of the target set is new to the release models
        res = rec.predict(frame.astype(np.float32), k_full, source=f"target frame {i}")
        if res.rotation is None:
            continue
        ypr = arrays.get(i, "ypr")
        png = out / f"release_overlay_{i}.png"
        save_overlay(png, frame, k_full, res.vertices_camera, res.landmarks2d, res.rotation, res.translation,
                     f"release models, target frame {i}: predicted yaw {res.ypr[0]:+.1f} pitch {res.ypr[1]:+.1f} "
                     f"roll {res.ypr[2]:+.1f}; true {ypr[0]:+.1f} {ypr[1]:+.1f} {ypr[2]:+.1f}", scale=2, colorbar=True)
        true_v = model.vertices(torch.from_numpy(arrays.get(i, "identity"))[None],
                                torch.from_numpy(arrays.get(i, "expression"))[None])[0].numpy()
        sheet = out / f"release_meshes_{i}.png"
        save_mesh_sheet(sheet, [true_v, mean, res.vertices_head], model.triangles.numpy(),
                        [f"frame {i}: ground truth", "the model's mean face", "release shape model + fit (the default)"],
                        fills)
        images += [png.name, sheet.name]
        if len(images) >= 6:
            break
    numbers = {"pose": summarize(err), "shape": {**summarize_shape(errs), "ms_per_frame": spf * 1e3},
               "mean_face": summarize_shape(mean_errs)}
    _say(f"release models on {len(test)} target frames of unseen identities: pose MAE {numbers['pose']['mae']:.2f} "
         f"deg, shape RMS {numbers['shape']['rms_mm']:.2f} mm (mean face {numbers['mean_face']['rms_mm']:.2f} mm)", t0)
    html = ("<p>The models that ship with depthface (<code>depthface predict FRAMES</code> and "
            "<code>Reconstructor()</code> use them; docs/models.md: data, command, seed, sha256, measured tables), "
            f"on the {len(test)} simulated-Kinect frames of this demo's test identities, which no release training "
            "saw. Pose on the stored crops:</p>" + html_table(pose_rows, ["model", *pose_cols, "frames"]) + POSE_GUIDE
            + "<p>Shape:</p>" + html_table(shape_rows, ["model", *shape_cols, "frames"]) + SHAPE_GUIDE
            + "<p>Below: the product path (automatic head localisation, re-crop, networks) on full frames, and the "
              "recovered face beside the truth and the mean face.</p>")
    return ("Release models (no training needed)", html, images, numbers)
