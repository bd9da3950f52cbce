"""Write depth frames with poses as a small dataset in a real dataset's layout (Biwi or ICT-3DHP).

This is the pure writing half of ``depthface data export``: it takes :class:`ExportFrame` records (full
depth frames and head poses, from anywhere) and lays them out exactly as the real datasets are, so the
readers of :mod:`depthface.data` (and any code written for the real datasets) read them back: depth bit
for bit, poses to float64 round-off. Rendering the frames of a synthetic dataset is done by the caller
(:mod:`depthface.synth.export`), since this package does not import :mod:`depthface.synth`.

Naming
    Each frame carries an ``identity`` (the person) and an ``index`` (its number in the source).

    * **Biwi** (``<out>/hpdb/NN/frame_XXXXX_depth.bin``, ``..._pose.txt``, ``hpdb/NN/depth.cal``):
      identity ``k`` becomes sequence :data:`BIWI_EXPORT_SEQUENCES` ``[k % 20]``: the 20 sequences of
      distinct Biwi subjects (Biwi's sequences 15, 18, 21 and 22 repeat subjects and are not used), so up
      to 20 identities stay 20 different subjects for the subject-wise splits; more identities wrap
      around (identities ``k`` and ``k + 20`` share a sequence and a subject id). The frame number is
      the source index (gaps within a sequence, as in Biwi). ``depth.cal`` holds the frames' camera.
    * **ICT-3DHP** (``<out>/NN/depthAligned/depth00001.png``, ``<out>/NN/polhemusNorm.csv``): one
      sequence per identity (``01``, ``02``, ... in order of first appearance), frames numbered from 1
      in the order given. The layout has no calibration file and its reader assumes the ``ict3dhp``
      camera, so frames must have been made with that camera (:data:`ICT3DHP_INTRINSICS`).

    ``<out>/depthface_export.json`` records the provenance: the format, the camera, the caller's
    ``provenance`` dictionary and, per frame, sequence, frame number, source index and identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from depthface.data.biwi import write_biwi_depth_calibration, write_biwi_frame
from depthface.data.frames import check_rotation, check_translation, depth_to_uint16, write_depth_png16
from depthface.data.ict3dhp import CSV_NAME, ICT3DHP_INTRINSICS, ict3dhp_depth_path, write_polhemus_csv
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics

__all__ = ["ExportFrame", "ExportSummary", "EXPORT_FORMATS", "BIWI_EXPORT_SEQUENCES", "MANIFEST_NAME",
           "biwi_sequence_for", "export_biwi", "export_ict3dhp", "export_frames"]

EXPORT_FORMATS = ("biwi", "ict3dhp")
MANIFEST_NAME = "depthface_export.json"

#: Biwi sequences of 20 distinct subjects (15, 18, 21, 22 repeat F03, F05, F02, M01).
BIWI_EXPORT_SEQUENCES: tuple[str, ...] = tuple(f"{i:02d}" for i in range(1, 25) if i not in (15, 18, 21, 22))


@dataclass(frozen=True, eq=False)
class ExportFrame:
    """One frame to write.

    Attributes:
        depth: ``(H, W)`` depth in mm (uint16, or integers/floats rounded to the mm), 0 = no measurement.
        rotation: ``(3, 3)`` head-to-camera rotation.
        translation: ``(3,)`` head centre in mm (camera frame).
        identity: the person (decides the sequence).
        index: the frame's number in its source (Biwi frame number; provenance).
    """

    depth: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    identity: int
    index: int


@dataclass(frozen=True)
class ExportSummary:
    """What was written: the root, the format, the frame count and the frames per sequence."""

    root: Path
    format: str
    n_frames: int
    sequences: dict[str, int]


def biwi_sequence_for(identity: int) -> str:
    """The Biwi sequence folder (``"01"`` ... ``"24"``) of a source identity (see the module docstring)."""
    return BIWI_EXPORT_SEQUENCES[int(identity) % len(BIWI_EXPORT_SEQUENCES)]


def _prepare_root(root: Path) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError("output exists and is not an empty folder; choose another --out or remove it", root)
    root.mkdir(parents=True, exist_ok=True)


def _check_frame(f: ExportFrame, intrinsics: Intrinsics) -> np.ndarray:
    depth = depth_to_uint16(f.depth)
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise InputError(f"frame {f.index}: depth is {depth.shape[1]}x{depth.shape[0]}, the camera "
                         f"{intrinsics.width}x{intrinsics.height}")
    return depth


def _write_manifest(root: Path, fmt: str, intrinsics: Intrinsics, provenance: dict | None,
                    records: list[dict]) -> None:
    doc = {"format": fmt, "intrinsics": intrinsics.to_dict(), "provenance": provenance or {},
           "n_frames": len(records), "frames": records}
    (root / MANIFEST_NAME).write_text(json.dumps(doc, indent=1) + "\n")


def export_biwi(root: str | Path, frames: Iterable[ExportFrame], intrinsics: Intrinsics,
                provenance: dict | None = None) -> ExportSummary:
    """Write frames as a Biwi Kinect Head Pose dataset under ``root`` (``root/hpdb/NN/...``).

    Args:
        root: output folder (created; must not exist or be empty).
        frames: the frames, any number, streamed (each is written as it comes).
        intrinsics: the frames' camera (written to every sequence's ``depth.cal``).
        provenance: recorded in ``depthface_export.json``.

    Returns:
        An :class:`ExportSummary`.

    Raises:
        InputError: a non-empty output, a depth of the wrong size or beyond Biwi's int16 range, a bad
            pose, or two frames with the same sequence and frame number.
    """
    root = Path(root)
    _prepare_root(root)
    hpdb = root / "hpdb"
    counts: dict[str, int] = {}
    written: set[tuple[str, int]] = set()
    records = []
    for f in frames:
        seq = biwi_sequence_for(f.identity)
        number = int(f.index)
        if (seq, number) in written:
            raise InputError(f"two frames map to sequence {seq} frame {number} (indices must be unique)")
        depth = _check_frame(f, intrinsics)
        if seq not in counts:
            write_biwi_depth_calibration(hpdb / seq, intrinsics)
            counts[seq] = 0
        write_biwi_frame(hpdb / seq, number, depth, check_rotation(f.rotation), check_translation(f.translation))
        written.add((seq, number))
        counts[seq] += 1
        records.append({"sequence": seq, "frame": number, "index": int(f.index), "identity": int(f.identity)})
    _write_manifest(root, "biwi", intrinsics, provenance, records)
    return ExportSummary(root, "biwi", len(records), dict(sorted(counts.items())))


def export_ict3dhp(root: str | Path, frames: Iterable[ExportFrame], intrinsics: Intrinsics = ICT3DHP_INTRINSICS,
                   provenance: dict | None = None) -> ExportSummary:
    """Write frames as an ICT-3DHP dataset under ``root`` (``root/NN/depthAligned/depth%05d.png`` and
    ``root/NN/polhemusNorm.csv``, translations in mm).

    Args:
        root: output folder (created; must not exist or be empty).
        frames: the frames; depth PNGs are written as they come, each sequence's CSV at the end.
        intrinsics: the frames' camera: must be :data:`ICT3DHP_INTRINSICS` (the layout cannot store another).
        provenance: recorded in ``depthface_export.json``.

    Returns:
        An :class:`ExportSummary`.
    """
    if intrinsics != ICT3DHP_INTRINSICS:
        raise InputError(f"the ICT-3DHP layout has no calibration file and its reader assumes the ict3dhp camera "
                         f"{ICT3DHP_INTRINSICS.to_dict()}; these frames were made with {intrinsics.to_dict()} "
                         "(render them with the ict3dhp camera, or export as biwi)")
    root = Path(root)
    _prepare_root(root)
    sequences: dict[int, str] = {}
    poses: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    records = []
    for f in frames:
        ident = int(f.identity)
        if ident not in sequences:
            sequences[ident] = f"{len(sequences) + 1:02d}"
            poses[sequences[ident]] = ([], [])
        seq = sequences[ident]
        depth = _check_frame(f, intrinsics)
        Rs, ts = poses[seq]
        Rs.append(check_rotation(f.rotation))
        ts.append(check_translation(f.translation))
        number = len(Rs)
        write_depth_png16(ict3dhp_depth_path(root / seq, number), depth)
        records.append({"sequence": seq, "frame": number, "index": int(f.index), "identity": ident})
    for seq, (Rs, ts) in poses.items():
        write_polhemus_csv(root / seq / CSV_NAME, np.stack(Rs), np.stack(ts))
    _write_manifest(root, "ict3dhp", intrinsics, provenance, records)
    return ExportSummary(root, "ict3dhp", len(records), {s: len(p[0]) for s, p in sorted(poses.items())})


def export_frames(root: str | Path, frames: Iterable[ExportFrame], fmt: str, intrinsics: Intrinsics,
                  provenance: dict | None = None) -> ExportSummary:
    """Write frames in ``fmt`` (``"biwi"`` or ``"ict3dhp"``): :func:`export_biwi` / :func:`export_ict3dhp`."""
    if fmt == "biwi":
        return export_biwi(root, frames, intrinsics, provenance)
    if fmt == "ict3dhp":
        return export_ict3dhp(root, frames, intrinsics, provenance)
    raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
