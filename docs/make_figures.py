"""Make the pictures of docs/synthetic.md: `.venv/bin/python docs/make_figures.py` (about a minute)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from depthface.inference.pictures import depth_colormap  # noqa: E402
from depthface.evaluation.report import dataset_contact_sheet  # noqa: E402
from depthface.facemodel import load_face_model  # noqa: E402
from depthface.synth.profiles import get_profile  # noqa: E402
from depthface.synth.scenes import SceneSampler  # noqa: E402
from depthface.synth.sensor import SensorProfile  # noqa: E402
from depthface.synth.storage import generate, render_frame  # noqa: E402

OUT = Path(__file__).parent / "images"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    model = load_face_model()
    prof = get_profile("syndata2")
    sampler = SceneSampler(model, prof, 0)
    kinect = SensorProfile.preset("kinect_v1")
    fig, axes = plt.subplots(2, 4, figsize=(14, 5.6))
    for col, index in enumerate((1, 7, 12, 30)):
        clean, scene, _ = render_frame(sampler, None, 0, index)
        sim, _, _ = render_frame(sampler, kinect, 0, index, full=True)
        near = float(scene.translation[2]) - 200
        for row, (img, what) in enumerate(((clean, "clean render"), (sim, "simulated Kinect v1"))):
            axes[row, col].imshow(depth_colormap(img, near=near, far=near + 2500))
            axes[row, col].set_title(f"sample {index}, {what}\nyaw {scene.ypr[0]:+.0f} pitch {scene.ypr[1]:+.0f}",
                                     fontsize=8)
            axes[row, col].axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "clean_vs_kinect_frames.png", dpi=80)
    plt.close(fig)
    with tempfile.TemporaryDirectory() as tmp:
        small = prof.scaled(count=256)
        src = generate(Path(tmp) / "src", small, 0, model, None, progress=False)
        tgt = generate(Path(tmp) / "tgt", small, 0, model, kinect, progress=False)
        dataset_contact_sheet(src, OUT / "source_crops.png", n=16, title="source: clean crops (SynData2-like), seed 0")
        dataset_contact_sheet(tgt, OUT / "target_crops.png", n=16, title="target: the same scenes through the Kinect v1 simulator")
    print(f"wrote pictures to {OUT}")


if __name__ == "__main__":
    main()
