"""Dataset pictures and the demo's HTML report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depthface.evaluation.plots import save_contact_sheet
from depthface.synth.storage import ChunkedArrays


def dataset_contact_sheet(root: str | Path, out: str | Path, n: int = 16, split: str | None = None, seed: int = 0,
                          title: str | None = None) -> Path:
    """Contact sheet of ``n`` random crops of a stored dataset, landmarks projected with the crop camera."""
    arrays = ChunkedArrays(root)
    idx = arrays.indices(split)
    pick = np.sort(np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False))
    crops, titles, lms = [], [], []
    for i in pick:
        crops.append(arrays.get(int(i), "depth"))
        fx, fy, cx, cy = arrays.get(int(i), "crop_intrinsics")
        lm = arrays.get(int(i), "landmarks3d").astype(np.float64)
        lms.append(np.stack((fx * lm[:, 0] / lm[:, 2] + cx, fy * lm[:, 1] / lm[:, 2] + cy), -1))
        y, p, r = arrays.get(int(i), "ypr")
        titles.append(f"#{i} y{y:+.0f} p{p:+.0f} r{r:+.0f}")
    m = arrays.manifest
    sensor = m["sensor"]["name"] if m.get("sensor") else "clean"
    return save_contact_sheet(out, crops, titles, landmarks_2d=lms,
                              suptitle=title or f"{m['profile']} ({sensor}), {m['n_frames']} frames")


def plot_loss_curves(path: str | Path, histories: dict[str, list[dict]], keys: dict[str, list[str]]) -> Path:
    """Training curves: one panel per run, the chosen loss keys against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.2), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        for key in keys[name]:
            xs = [h["epoch"] for h in hist if key in h]
            ys = [h[key] for h in hist if key in h]
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=key)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_histograms(path: str | Path, values: dict[str, np.ndarray], xlabel: str, bins: int = 30) -> Path:
    """Overlaid histograms of per-frame errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    hi = max(float(np.percentile(v, 99)) for v in values.values() if len(v))
    for name, v in values.items():
        ax.hist(np.clip(v, 0, hi), bins=bins, range=(0, hi), alpha=0.5, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("frames")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def write_html_report(path: str | Path, title: str, sections: list[tuple[str, str, list[str]]]) -> Path:
    """A self-contained page: each section is ``(heading, html text, [image paths relative to the page])``."""
    import html

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "img{max-width:100%;border:1px solid #ddd;margin:4px 0}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
             "code{background:#f4f4f4;padding:1px 4px}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for heading, text, images in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{text}")
        parts += [f"<div><img src='{html.escape(img)}' alt='{html.escape(img)}'></div>" for img in images]
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts) + "\n")
    return Path(path)


def html_table(rows: list[dict], columns: list[str], fmt: str = "{:.2f}") -> str:
    """A small HTML table of dict rows."""
    import html

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"<td>{fmt.format(v) if isinstance(v, float) else html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
