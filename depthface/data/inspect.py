"""``depthface data inspect``: what a dataset folder holds: counts, cameras, pose ranges, a pose histogram.

Works on the four layouts depthface reads, detected from the folder (:func:`detect_layout`):

* ``synthetic``: a depthface synthetic dataset (``manifest.json``; labels read straight from
  ``chunks/NNNNN/ypr.npy`` and ``translation.npy`` with numpy, as documented in
  :mod:`depthface.synth.storage`; this package does not import :mod:`depthface.synth`);
* ``biwi``: a Biwi root (``hpdb/NN/frame_XXXXX_depth.bin``; poses read from the ``_pose.txt`` files
  only, no depth is decoded);
* ``ict3dhp``: an ICT-3DHP root (``NN/depthAligned/`` + ``polhemusNorm.csv``);
* ``facewarehouse``: a FaceWarehouse root (``Tester_k/TrainingPose/``): meshes, no head poses.

Angles are the Biwi convention (:mod:`depthface.geometry.conventions`), degrees; distances are the
head centre's z in mm. Unreadable pose files are counted and named (up to three), not fatal; special
entries (FIFOs, devices, dangling links, link loops, folders named like data files) are listed in the
notes. ``inspect`` reads labels only: :func:`verify_real` (``depthface data verify``) decodes every file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from depthface.files import special_entries
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.geometry.rotations import matrix_to_euler

__all__ = ["LAYOUTS", "DatasetSummary", "detect_layout", "inspect_dataset", "format_summary", "plot_pose_histogram",
           "verify_real"]

LAYOUTS = ("synthetic", "biwi", "ict3dhp", "facewarehouse")
PERCENTILES = (0, 5, 50, 95, 100)


@dataclass
class DatasetSummary:
    """What :func:`inspect_dataset` found.

    Attributes:
        kind: one of :data:`LAYOUTS`.
        root: the folder.
        n_frames: frames (meshes for FaceWarehouse).
        groups: frames per sequence / tester / identity split.
        n_subjects: distinct people.
        intrinsics: camera per group (one entry ``"all"`` when shared).
        ypr: ``(N, 3)`` yaw, pitch, roll in degrees (``None`` without poses).
        translation: ``(N, 3)`` head centres in mm (``None`` without poses).
        notes: extra lines (sensor, missing chunks, unreadable files).
    """

    kind: str
    root: Path
    n_frames: int
    groups: dict[str, int]
    n_subjects: int
    intrinsics: dict[str, Intrinsics]
    ypr: np.ndarray | None = None
    translation: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def detect_layout(path: str | Path) -> str:
    """The layout of a dataset folder (one of :data:`LAYOUTS`); :class:`InputError` when unrecognised."""
    root = Path(path)
    if not root.is_dir():
        raise InputError("dataset folder not found", root)
    if (root / "manifest.json").is_file():
        return "synthetic"
    if (root / "hpdb").is_dir() or any(root.glob("[0-9][0-9]/frame_*_depth.bin")):
        return "biwi"
    if any(root.glob("*/depthAligned")):
        return "ict3dhp"
    if any(root.glob("Tester_*/TrainingPose")):
        return "facewarehouse"
    raise InputError("unrecognised dataset layout: expected manifest.json (depthface synthetic), hpdb/ (Biwi), "
                     "<seq>/depthAligned/ (ICT-3DHP) or Tester_k/TrainingPose/ (FaceWarehouse)", root)


def _euler(R: np.ndarray) -> np.ndarray:
    if len(R) == 0:
        return np.zeros((0, 3))
    return matrix_to_euler(torch.from_numpy(np.asarray(R, dtype=np.float64))).numpy()


def _shared(intrinsics: dict[str, Intrinsics]) -> dict[str, Intrinsics]:
    values = set(intrinsics.values())
    return {"all": next(iter(values))} if len(values) == 1 else intrinsics


def _inspect_biwi(root: Path) -> DatasetSummary:
    from depthface.data.biwi import BiwiDataset, read_biwi_pose

    ds = BiwiDataset(root)
    Rs, ts, bad = [], [], []
    for i in range(len(ds)):
        try:
            R, t = read_biwi_pose(ds.paths(i)[1])
        except InputError as e:
            bad.append(str(e))
            continue
        Rs.append(R)
        ts.append(t)
    groups: dict[str, int] = {}
    for k in ds.keys:
        groups[k.sequence] = groups.get(k.sequence, 0) + 1
    notes = [f"{len(bad)} pose file(s) unreadable, e.g. {'; '.join(bad[:3])}"] if bad else []
    return DatasetSummary("biwi", root, len(ds), groups, len(set(ds.subjects)), _shared(ds.calibrations),
                          _euler(np.array(Rs).reshape(-1, 3, 3)), np.array(ts).reshape(-1, 3), notes)


def _inspect_ict(root: Path) -> DatasetSummary:
    from depthface.data.ict3dhp import ICT3DHPDataset

    ds = ICT3DHPDataset(root)
    poses = [ds.pose(i) for i in range(len(ds))]
    groups: dict[str, int] = {}
    for k in ds.keys:
        groups[k.sequence] = groups.get(k.sequence, 0) + 1
    notes = [f"{ds.skipped} depth frame(s) without a CSV row left out"] if ds.skipped else []
    notes.append("translations assumed to be mm (unverified for the real ICT-3DHP)")
    return DatasetSummary("ict3dhp", root, len(ds), groups, len(set(ds.subjects)), {"all": ds.intrinsics},
                          _euler(np.array([p[0] for p in poses]).reshape(-1, 3, 3)),
                          np.array([p[1] for p in poses]).reshape(-1, 3), notes)


def _inspect_facewarehouse(root: Path) -> DatasetSummary:
    from depthface.data.facewarehouse import FaceWarehouseDataset, facewarehouse_paths

    ds = FaceWarehouseDataset(root)
    groups: dict[str, int] = {}
    n_depth = 0
    for tester, pose in ds.keys:
        groups[f"Tester_{tester}"] = groups.get(f"Tester_{tester}", 0) + 1
        p = facewarehouse_paths(root, tester, pose)
        n_depth += p["depth_png"].exists() or p["depth_npy"].exists()
    notes = [f"{n_depth} of {len(ds)} samples have depth", "meshes only: no head poses to histogram"]
    return DatasetSummary("facewarehouse", root, len(ds), groups, len(groups), {"all": ds.intrinsics}, notes=notes)


def _inspect_synthetic(root: Path) -> DatasetSummary:
    try:
        m = json.loads((root / "manifest.json").read_text())
        n_frames, chunk, n_chunks = int(m["n_frames"]), int(m["chunk_size"]), int(m["n_chunks"])
        K = Intrinsics(**m["intrinsics"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"not a readable depthface synthetic manifest ({type(e).__name__}: {e})",
                         root / "manifest.json") from None
    ypr, trans, missing = [], [], []
    for c in range(n_chunks):
        d = root / "chunks" / f"{c:05d}"
        try:
            ypr.append(np.load(d / "ypr.npy").reshape(-1, 3))
            trans.append(np.load(d / "translation.npy").reshape(-1, 3))
        except (OSError, ValueError):
            missing.append(c)
    split = m.get("split", {})
    groups = {f"{name} identities": len(ids) for name, ids in split.items()}
    sensor = m.get("sensor")
    notes = [f"profile {m.get('profile')} (mimics {m.get('mimics')}), seed {m.get('seed')}, "
             f"sensor {'none (clean renders)' if sensor is None else sensor.get('name')}, "
             f"face model {m.get('face_model', {}).get('name')}"]
    if missing:
        notes.append(f"{len(missing)} of {n_chunks} chunks missing or unreadable (e.g. {missing[:3]}); "
                     f"poses of the {len(missing) * chunk} or fewer samples there are not counted")
    y = np.concatenate(ypr).astype(np.float64) if ypr else np.zeros((0, 3))
    t = np.concatenate(trans).astype(np.float64) if trans else np.zeros((0, 3))
    return DatasetSummary("synthetic", root, n_frames, groups, int(m.get("n_identities", 0)), {"all": K}, y, t, notes)


#: file names real datasets hold, for naming folders that look like one
_DATA_SUFFIXES = (".bin", ".png", ".npy", ".npz", ".obj", ".txt", ".csv", ".cal", ".land")


def inspect_dataset(path: str | Path) -> DatasetSummary:
    """Inspect a dataset folder of any layout in :data:`LAYOUTS` (see the module docstring)."""
    root = Path(path)
    kind = detect_layout(root)
    summary = {"synthetic": _inspect_synthetic, "biwi": _inspect_biwi, "ict3dhp": _inspect_ict,
               "facewarehouse": _inspect_facewarehouse}[kind](root)
    special = list(special_entries(root, _DATA_SUFFIXES))
    if special:
        summary.notes.append(f"{len(special)} entr{'y' if len(special) == 1 else 'ies'} skipped: "
                             + "; ".join(f"{p}: {why}" for p, why in special[:5]) + (" ..." if len(special) > 5 else ""))
    if kind == "biwi":
        summary.notes.append("depth files are not decoded here: `depthface data verify` decodes every file")
    return summary


def verify_real(path: str | Path) -> list[str]:
    """Decode every file of a Biwi, ICT-3DHP or FaceWarehouse copy (depth, poses, calibrations,
    meshes, landmarks) and return one line per problem (empty: intact). Special entries (FIFOs,
    devices, dangling links, link loops) are problems too. A bad calibration or pose table costs only
    its sequence's frames; nothing stops the check.
    """
    root = Path(path)
    kind = detect_layout(root)
    if kind == "synthetic":
        raise InputError("a depthface dataset: verify it with depthface.synth.storage.verify", root)
    problems = [f"{p}: {why}" for p, why in special_entries(root, _DATA_SUFFIXES)]
    if kind == "biwi":
        from depthface.data.biwi import BiwiDataset

        ds = BiwiDataset(root)
        problems += [f"{ds.hpdb / seq / 'depth.cal'}: {msg}" for seq, msg in sorted(ds.calibration_errors.items())]
        bad_seq = set(ds.calibration_errors)
        datasets = [(ds, [i for i, k in enumerate(ds.keys) if k.sequence not in bad_seq])]
    elif kind == "ict3dhp":
        from depthface.data.ict3dhp import DEPTH_DIR, ICT3DHPDataset

        datasets = []
        for seq in sorted(p.name for p in root.iterdir() if (p / DEPTH_DIR).is_dir()):
            try:
                ds = ICT3DHPDataset(root, sequences=[seq])
            except InputError as e:
                problems.append(str(e))
                continue
            datasets.append((ds, range(len(ds))))
            if ds.skipped:
                problems.append(f"{root / seq}: {ds.skipped} depth frame(s) without a row in the pose CSV")
    else:
        from depthface.data.facewarehouse import FaceWarehouseDataset

        ds = FaceWarehouseDataset(root)
        datasets = [(ds, range(len(ds)))]
    for ds, indices in datasets:
        for i in indices:
            try:
                item = ds[i]
                if kind == "ict3dhp":
                    ds.pose(i)
                if kind == "biwi" and not np.isfinite(item.depth).all():
                    problems.append(f"{item.source}: non-finite depth")
            except InputError as e:
                problems.append(str(e))
            except Exception as e:  # noqa: BLE001 - a reader bug must not hide the rest of the check
                problems.append(f"{root} frame {i}: unexpected {type(e).__name__}: {' '.join(str(e).split())[:80]}")
    return problems


_TITLES = {"synthetic": "depthface synthetic dataset", "biwi": "Biwi Kinect Head Pose dataset",
           "ict3dhp": "ICT-3DHP dataset", "facewarehouse": "FaceWarehouse dataset"}


def _k(k: Intrinsics) -> str:
    return f"fx {k.fx:g} fy {k.fy:g} cx {k.cx:g} cy {k.cy:g}, {k.width}x{k.height}"


def format_summary(s: DatasetSummary) -> str:
    """The summary as the lines ``depthface data inspect`` prints."""
    unit = "meshes" if s.kind == "facewarehouse" else "frames"
    lines = [f"{_TITLES[s.kind]} at {s.root}", f"{unit}: {s.n_frames}, subjects/identities: {s.n_subjects}"]
    if s.groups:
        items = list(s.groups.items())
        shown = ", ".join(f"{k}: {v}" for k, v in items[:12])
        if len(items) > 12:
            shown += f", ... ({len(items)} groups)"
        lines.append(f"per group: {shown}")
    for name, k in s.intrinsics.items():
        lines.append(f"camera ({name}): {_k(k)}")
    if s.ypr is not None and len(s.ypr):
        head = "".join(f"{('p' + str(p)) if 0 < p < 100 else ('min' if p == 0 else 'max'):>9}" for p in PERCENTILES)
        lines.append(f"  {f'pose of {len(s.ypr)} frames':<25}{head}")
        rows = [("yaw (deg)", s.ypr[:, 0]), ("pitch (deg)", s.ypr[:, 1]), ("roll (deg)", s.ypr[:, 2])]
        if s.translation is not None and len(s.translation):
            rows.append(("distance z (mm)", s.translation[:, 2]))
        for name, v in rows:
            lines.append(f"  {name:<25}" + "".join(f"{x:9.1f}" for x in np.percentile(v, PERCENTILES)))
    lines += s.notes
    return "\n".join(lines)


def plot_pose_histogram(s: DatasetSummary, out: str | Path) -> Path | None:
    """Write histograms of yaw, pitch, roll (and yaw against pitch) to a PNG. ``None`` without poses."""
    if s.ypr is None or len(s.ypr) == 0:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, j, name in zip(axes[:3], range(3), ("yaw", "pitch", "roll"), strict=True):
        ax.hist(s.ypr[:, j], bins=60, color="tab:blue")
        ax.set_xlabel(f"{name} (deg)")
        ax.set_ylabel("frames")
    axes[3].hist2d(s.ypr[:, 0], s.ypr[:, 1], bins=40, cmap="viridis")
    axes[3].set_xlabel("yaw (deg)")
    axes[3].set_ylabel("pitch (deg)")
    fig.suptitle(f"{_TITLES[s.kind]}: {s.root.name} ({len(s.ypr)} frames)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
