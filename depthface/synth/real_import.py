"""``depthface data import``: preprocess the frames of a real dataset once into a depthface dataset.

It lives in :mod:`depthface.synth` because the dataset format it writes is :mod:`depthface.synth.storage`'s
(:mod:`depthface.data` reads the real layouts and imports nothing of :mod:`depthface.synth`).

Self-supervised adaptation (``train pose --target``, ``train shape --target``) reads target frames many
times (3 reuses per epoch, 50 epochs); localising the head and cropping every time would cost more than
the network. This command runs the one preprocessing path (:func:`depthface.data.preprocess.preprocess`)
once per frame of a Biwi or ICT-3DHP copy and stores, in the chunked format of
:mod:`depthface.synth.storage` (``format: depthface-real``):

* the 160x160 uint16 crop, its centre, window and intrinsics (what a target dataset needs);
* the pose labels ``quaternion`` (w >= 0), ``translation`` (mm, the dataset's own head centre), ``ypr``
  and ``identity_id`` (the subject's index in ``manifest["subjects"]``), for ``eval pose --data``;
* ``status`` (0 crop written, 1 no head found, 2 unreadable frame) and ``frame_number``.

Frames without a crop are kept as all-zero rows so chunks stay fixed-size (and resumable); every split
name selects only the frames with a crop. The crop centre is the automatic head localiser's (as a user's
frames would get) or, with ``gt_crop``, the ground-truth head centre. Chunks are written atomically, so
an interrupted import resumes where it stopped; ``data verify`` checks an import like any dataset.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from depthface.data.localize import HeadNotFoundError
from depthface.data.preprocess import preprocess
from depthface.errors import InputError
from depthface.geometry.rotations import matrix_to_euler, matrix_to_quaternion
from depthface.data.splits import open_real_split
from depthface.synth.storage import (REAL_FORMAT, check_existing_manifest, stored_fields, write_chunk,
                                     write_manifest_once)

__all__ = ["IMPORT_FIELDS", "import_real"]

#: what an import stores per frame
IMPORT_FIELDS = ("depth", "crop_centre", "crop_window", "crop_intrinsics", "quaternion", "translation", "ypr",
                 "identity_id", "status", "frame_number")
STATUS_OK, STATUS_NO_HEAD, STATUS_UNREADABLE = 0, 1, 2


def _manifest(kind: str, root: Path, split: str, part: str, gt_crop: bool, frames, indices: np.ndarray,
              chunk_size: int) -> dict:
    subjects = sorted({frames.keys[int(i)].subject for i in indices})
    if hasattr(frames, "calibrations"):  # Biwi: a sequence with a bad depth.cal has none (its frames are unreadable)
        if not frames.calibrations:
            raise InputError("no sequence has a readable depth.cal", root)
        first = frames.calibrations.get(frames.keys[int(indices[0])].sequence, next(iter(frames.calibrations.values())))
    else:
        first = frames.intrinsics
    m = {
        "format": REAL_FORMAT,
        "dataset": kind,
        "source": str(root.resolve()),
        "protocol_split": split,
        "part": part,
        "crop": "ground_truth" if gt_crop else "localizer",
        "n_frames": int(len(indices)),
        "chunk_size": int(chunk_size),
        "n_chunks": -(-len(indices) // chunk_size),
        "n_full_frames": 0,
        "fields": list(IMPORT_FIELDS),
        "subjects": subjects,
        "frame_indices_sha": _digest(indices),
        "intrinsics": first.to_dict(),
        "face_model": {"name": None, "sha256": None, "identity_dim": 0, "expression_dim": 0},
        "split": {"train": list(range(len(subjects))), "val": [], "test": list(range(len(subjects)))},
    }
    return json.loads(json.dumps(m))


def _digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()[:16]


def _chunk(frames, indices: np.ndarray, subjects: list[str], gt_crop: bool) -> tuple[dict[str, np.ndarray], list[str]]:
    fields = stored_fields({"format": REAL_FORMAT, "fields": IMPORT_FIELDS,
                            "face_model": {"identity_dim": 0, "expression_dim": 0}})
    arrays = {name: np.zeros((len(indices), *shape), dtype) for name, (shape, dtype) in fields.items()}
    problems = []
    for j, i in enumerate(indices):
        key = frames.keys[int(i)]
        arrays["frame_number"][j] = key.frame_index
        arrays["identity_id"][j] = subjects.index(key.subject)
        try:
            f = frames[int(i)]
            if not f.has_pose:
                raise InputError("no ground-truth pose", f.source)
            prep = preprocess(f.depth, f.intrinsics, f.translation if gt_crop else None, source=str(f.source))
        except HeadNotFoundError as e:
            arrays["status"][j] = STATUS_NO_HEAD
            problems.append(str(e))
            continue
        except InputError as e:
            arrays["status"][j] = STATUS_UNREADABLE
            problems.append(str(e))
            continue
        R = torch.from_numpy(np.asarray(f.rotation, np.float64))
        arrays["depth"][j] = np.clip(np.rint(prep.crop), 0, 65535).astype(np.uint16)
        arrays["crop_centre"][j] = prep.crop_centre
        arrays["crop_window"][j] = prep.window.as_array()
        arrays["crop_intrinsics"][j] = prep.crop_intrinsics_array
        arrays["quaternion"][j] = matrix_to_quaternion(R).numpy()
        arrays["translation"][j] = f.translation
        arrays["ypr"][j] = matrix_to_euler(R).numpy()
    return arrays, problems


def import_real(kind: str, root: str | Path, out: str | Path, split: str, part: str = "train", gt_crop: bool = False,
                chunk_size: int = 256, progress: bool = True, stop_after: int | None = None) -> dict:
    """Import one part of a real dataset's split (see the module docstring); resumes an interrupted import.

    Args:
        kind: ``"biwi"`` or ``"ict3dhp"``.
        root: the dataset folder.
        out: the depthface dataset to write (an existing one must be the same import).
        split, part: which frames (:func:`depthface.data.splits.open_real_split`).
        gt_crop: crop around the ground-truth head centre instead of the automatic localisation.
        stop_after: stop after writing this many chunks (tests of interruption).

    Returns:
        Counts: ``{"frames", "cropped", "no_head", "unreadable"}`` (over the chunks written so far).
    """
    root, out = Path(root), Path(out)
    frames, indices = open_real_split(kind, root, split, part)
    manifest = _manifest(kind, root, split, part, gt_crop, frames, indices, chunk_size)
    check_existing_manifest(out, manifest)
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    write_manifest_once(out, manifest)
    todo = [c for c in range(manifest["n_chunks"]) if not (out / "chunks" / f"{c:05d}").exists()]
    if stop_after is not None:
        todo = todo[:stop_after]
    bar = tqdm(total=sum(len(indices[c * chunk_size:(c + 1) * chunk_size]) for c in todo), unit="frame",
               desc=f"import {kind}", disable=not progress)
    for c in todo:
        arrays, problems = _chunk(frames, indices[c * chunk_size:(c + 1) * chunk_size], manifest["subjects"], gt_crop)
        write_chunk(out, c, arrays, {})
        for p in problems:
            tqdm.write(f"skipped: {p}")
        bar.update(len(arrays["depth"]))
    bar.close()
    status = np.concatenate([np.load(d / "status.npy") for d in sorted((out / "chunks").glob("[0-9]*"))]) \
        if any((out / "chunks").glob("[0-9]*")) else np.zeros(0, np.uint8)
    return {"frames": int(len(status)), "cropped": int((status == STATUS_OK).sum()),
            "no_head": int((status == STATUS_NO_HEAD).sum()), "unreadable": int((status == STATUS_UNREADABLE).sum())}
