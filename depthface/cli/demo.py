"""``make demo``: the whole story on the built-in default face model, small enough for 2 CPU cores."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from depthface.evaluation.plots import save_mesh_sheet
from depthface.evaluation.report import dataset_contact_sheet
from depthface.facemodel import load_face_model
from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import generate


def run_demo(out: Path, face_model: Path | None = None, frames: int = 512, seed: int = 0) -> None:
    """Sample faces, synthesise small source and simulated-Kinect target sets, and picture them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = load_face_model(face_model)
    print(f"face model: {model.name} ({model.mean.shape[0]} vertices, {model.identity_dim} identity modes, "
          f"{model.expression_dim} expressions) from {model.source}")

    # 1. meshes of a few sampled identities and expressions
    gen = torch.Generator().manual_seed(seed)
    ids = model.sample_identity(4, gen)
    expr = torch.zeros(4, model.expression_dim)
    names = list(model.expression_names)
    for row, combo in enumerate([{}, {"mouthSmile_L": 0.8, "mouthSmile_R": 0.8}, {"jawOpen": 0.6},
                                 {"browInnerUp_L": 0.9, "browInnerUp_R": 0.9, "eyeBlink_L": 1.0}]):
        for k, w in combo.items():
            expr[row, names.index(k)] = w
    verts = model.vertices(ids, expr)
    mesh_dir = out / "meshes"
    mesh_dir.mkdir(exist_ok=True)
    for i in range(len(verts)):
        model.export_mesh(verts[i], mesh_dir / f"sample_{i}.ply")
    sheet = save_mesh_sheet(out / "meshes.png", [v.numpy() for v in verts], model.triangles.numpy(),
                            [f"identity {i}, expression {j}" for i, j in
                             enumerate(["neutral", "smile", "jaw open", "brows up + blink"])])
    print(f"wrote {len(verts)} meshes to {mesh_dir} and {sheet}")

    # 2. small source (clean) and target (simulated Kinect) sets of the Biwi-like profile
    prof = get_profile("syndata2").scaled(count=frames)
    src = generate(out / "data" / "source", prof, seed, model, None)
    tgt = generate(out / "data" / "target", prof, seed + 1, model, SensorProfile.preset("kinect_v1"))
    a = dataset_contact_sheet(src, out / "source_crops.png", n=16, title="source: clean synthetic (SynData2-like)")
    b = dataset_contact_sheet(tgt, out / "target_crops.png", n=16, title="target: simulated Kinect v1")
    print(f"wrote datasets {src} and {tgt}; contact sheets {a} and {b}")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; outputs under {out}")
