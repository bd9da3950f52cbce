"""Reading users' depth files and writing predictions.

Inputs: 16-bit PNG (mm), ``.npy`` / ``.npz`` (an array ``depth`` or the only array), Biwi ``.bin``
(intrinsics from a ``depth.cal`` beside it), and folders of those (an ICT-3DHP sequence folder's
``depthAligned/`` PNGs get the ICT-3DHP intrinsics; a depthface dataset contributes its full frames
``frames/*.npy`` with its manifest's camera, never its crop and label arrays). ``depth_scale`` converts
a sensor's units to mm (e.g. 0.1 for RealSense's 100 um units; 1000 for metres).

Robustness (one bad file never costs a run): readers accept regular files only (FIFOs, devices, sockets,
dangling links and link loops are named and reported, never opened), check sizes before allocating
(file size, the header's image size and :data:`MAX_PIXELS`), never unpickle, and turn every failure of a
file into one :class:`InputError` line naming it. A bad ``depth.cal`` costs only the frames of its folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthface.data.biwi_depth import read_biwi_depth
from depthface.files import MAX_FILE_BYTES, file_problem
from depthface.data.frames import read_depth_png16
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics, read_biwi_calibration

SUFFIXES = (".png", ".npy", ".npz", ".bin")
#: largest depth image accepted (pixels), checked on the file's header before decoding
MAX_PIXELS = 40_000_000
#: largest calibration / manifest file read (bytes)
MAX_TEXT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class InputFrame:
    """One input file: its path, a display name and the intrinsics its layout implies (or None).

    ``problem`` is set when the file is known to be unreadable before reading it (a FIFO, a dangling
    link, a bad ``depth.cal`` of its folder ...); such a frame becomes an "unreadable" row.
    """

    path: Path
    name: str
    intrinsics: Intrinsics | None
    problem: str | None = None


@dataclass
class CollectedInputs:
    """The frames to read, and the entries skipped on purpose (each with its reason)."""

    frames: list[InputFrame] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# names


def display_name(name: str | os.PathLike) -> str:
    """A printable, UTF-8-encodable form of a file name: undecodable bytes as ``\\xNN``, control
    characters escaped (so any byte sequence survives CSV/JSON and the terminal)."""
    raw = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in raw)


_PORTABLE = re.compile(r"[^A-Za-z0-9._-]")


def _short_hash(text: str) -> str:
    return hashlib.sha1(os.fsencode(text)).hexdigest()[:8]


def output_name(name: str) -> str:
    """The relative output folder of a frame: its relative path, each component reduced to portable
    characters (``A-Z a-z 0-9 . _ -``) and, when that changed it, suffixed with a hash of the original,
    so that ``a b.npy``, ``a?b.npy`` and ``a_b.npy`` never share a folder."""
    parts = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        safe = _PORTABLE.sub("_", comp)
        if safe != comp or safe.startswith(".") or len(safe) > 100:
            safe = f"{safe[:80]}-{_short_hash(comp)}"
        parts.append(safe)
    return "/".join(parts) or f"frame-{_short_hash(name)}"


def unique_output_names(names: list[str]) -> list[str]:
    """:func:`output_name` of each name, made unique also on case-insensitive file systems."""
    out, seen = [], set()
    for i, n in enumerate(names):
        o = output_name(n)
        if o.lower() in seen:
            o = f"{o}-{_short_hash(f'{i}:{n}')}"
        seen.add(o.lower())
        out.append(o)
    return out


def safe_name(name: str) -> str:
    """Backwards-compatible alias of :func:`output_name`."""
    return output_name(name)


# ----------------------------------------------------------------------------------------------
# files


def _check_pixels(shape: tuple[int, ...], path: Path) -> None:
    n = math.prod(int(s) for s in shape)
    if n > MAX_PIXELS:
        raise InputError(f"image of {'x'.join(map(str, shape))} = {n} values is larger than {MAX_PIXELS} pixels", path)


def _read_npy_stream(f, path: Path, limit: int) -> np.ndarray:
    """One ``.npy`` array from an open binary stream: header checked (no objects, size bounded)
    before reading exactly the bytes it announces."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise InputError(f"unsupported .npy format version {version}", path)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError/SyntaxError/... for bad headers
        raise InputError(f"not a readable NumPy array ({_short(e)})", path) from None
    if dtype.hasobject:
        raise InputError("array holds Python objects (refused: depth must be numeric)", path)
    _check_pixels(shape, path)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > limit:
        raise InputError(f"array header announces {nbytes} bytes, more than the file can hold", path)
    buf = f.read(nbytes)
    if len(buf) != nbytes:
        raise InputError(f"truncated array: {len(buf)} of {nbytes} bytes", path)
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())[:80]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _read_npz(path: Path, size: int) -> np.ndarray:
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.endswith(".npy")]
        keys = [n[:-4] for n in names]
        if "depth" in keys:
            member = "depth.npy"
        elif len(keys) == 1:
            member = names[0]
        else:
            raise InputError(f"npz holds {keys}; name the depth array 'depth'", path)
        info = zf.getinfo(member)
        if info.file_size > max(size * 1100, 1 << 20) or info.file_size > 4 * MAX_FILE_BYTES:
            raise InputError(f"npz member {member} claims {info.file_size} bytes (a zip bomb?)", path)
        with zf.open(info) as f:
            return _read_npy_stream(f, path, info.file_size)


def _check_png_header(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        _check_pixels((h, w), path)


def read_depth_file(path: str | Path, depth_scale: float = 1.0) -> np.ndarray:
    """Read one depth frame as float32 mm ``(H, W)``; one-line InputError on anything unreadable.

    Only regular files of at most :data:`MAX_FILE_BYTES` are opened; image sizes above
    :data:`MAX_PIXELS` are refused from the header, before any allocation.
    """
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise InputError(problem, display_name(path))
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"unsupported depth file type {display_name(suffix)!r}; use one of {', '.join(SUFFIXES)}",
                         display_name(path))
    try:
        if suffix == ".png":
            _check_png_header(path)
            depth = read_depth_png16(path)
        elif suffix == ".bin":
            depth = read_biwi_depth(path)
        elif suffix == ".npy":
            with open(path, "rb") as f:
                depth = _read_npy_stream(f, path, path.stat().st_size)
        else:
            if not zipfile.is_zipfile(path):
                with open(path, "rb") as f:
                    kind = "a .npy array" if f.read(6) == b"\x93NUMPY" else "not a zip archive"
                raise InputError(f"not a .npz file ({kind}); name it for what it holds", path)
            depth = _read_npz(path, path.stat().st_size)
    except InputError as e:
        prefix = " ".join(f"{path}:".split())
        text = str(e)[len(prefix):].strip() if str(e).startswith(prefix) else str(e)
        raise InputError(text, display_name(path)) from None
    except MemoryError:
        raise InputError("too large to read into memory", display_name(path)) from None
    except Exception as e:  # noqa: BLE001 - zipfile/zlib/imageio raise many types for corrupt files
        raise InputError(f"corrupt or unreadable {suffix[1:]} file ({_short(e)})", display_name(path)) from None
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise InputError(f"depth must be a 2-D (H, W) array, got shape {depth.shape}", display_name(path))
    if not (np.issubdtype(depth.dtype, np.integer) or np.issubdtype(depth.dtype, np.floating)):
        raise InputError(f"depth must be numeric, got dtype {depth.dtype}", display_name(path))
    return depth.astype(np.float32) * np.float32(depth_scale)


# ----------------------------------------------------------------------------------------------
# collecting inputs


def _calibration(folder: Path, cache: dict) -> tuple[Intrinsics | None, str | None]:
    """The folder's Biwi ``depth.cal`` (read once per folder); a bad one costs only this folder."""
    if folder not in cache:
        cal = folder / "depth.cal"
        problem = file_problem(cal, MAX_TEXT_BYTES)
        try:
            if problem is not None:
                raise InputError(problem, display_name(cal))
            cache[folder] = (read_biwi_calibration(cal).intrinsics, None)
        except InputError as e:
            cache[folder] = (None, f"bad calibration: {e}")
    return cache[folder]


def _layout_intrinsics(path: Path, cache: dict) -> tuple[Intrinsics | None, str | None]:
    if path.suffix.lower() == ".bin" and os.path.lexists(path.parent / "depth.cal"):
        return _calibration(path.parent, cache)
    if path.parent.name == "depthAligned":
        return Intrinsics.preset("ict3dhp"), None
    return None, None


def _dataset_manifest(folder: Path) -> dict | None:
    """The manifest of a depthface dataset folder, or None when ``folder`` is not one."""
    from depthface.synth.storage import FORMATS

    path = folder / "manifest.json"
    if file_problem(path, MAX_TEXT_BYTES) is not None:
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("format") in FORMATS else None


def _is_chunk_folder(folder: Path, files: list[str]) -> bool:
    """A depthface dataset chunk (``checksums.json`` beside the crop and label arrays)."""
    return "checksums.json" in files and "depth.npy" in files and "crop_centre.npy" in files


def _depth_like(name: str) -> bool:
    return name.lower().endswith(SUFFIXES) and not name.endswith("_mask.png")


def _walk(root: Path, skipped: list[str]) -> list[tuple[Path, Intrinsics | None]]:
    """Depth-file candidates under ``root`` (sorted, links to folders not followed), with the
    intrinsics of a depthface dataset's manifest for its ``frames/``."""
    found: list[tuple[Path, Intrinsics | None]] = []
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=errors.append):
        folder = Path(dirpath)
        dirnames.sort()
        for d in list(dirnames):
            if os.path.islink(folder / d):
                dirnames.remove(d)
                skipped.append(f"{display_name(folder / d)}: a link to a folder, not followed")
            elif _depth_like(d):
                skipped.append(f"{display_name(folder / d)}: a folder named like a depth file (its contents are read)")
        manifest = _dataset_manifest(folder)
        if manifest is not None:
            k = None
            try:
                k = Intrinsics(**manifest["intrinsics"])
            except Exception:  # noqa: BLE001 - a damaged manifest: frames then use --intrinsics
                pass
            n_arrays = sum(1 for _ in folder.glob("chunks/*/*.npy"))
            skipped.append(f"{display_name(folder)}: a depthface dataset; its {n_arrays} crop/label arrays in "
                           "chunks/ are not depth frames (skipped); its full frames in frames/ are read")
            frames = folder / "frames"
            if frames.is_dir() and not frames.is_symlink():
                found += [(f, k) for f in sorted(frames.iterdir()) if _depth_like(f.name)]
            dirnames.clear()
            continue
        if _is_chunk_folder(folder, filenames):
            skipped.append(f"{display_name(folder)}: a depthface dataset chunk (crops and labels, not depth frames): "
                           "skipped")
            continue
        found += [(folder / f, None) for f in sorted(filenames) if _depth_like(f)]
    for e in errors:
        skipped.append(f"{display_name(e.filename or root)}: cannot list folder ({e.strerror})")
    return found


def collect_inputs(paths: list[str | Path], exclude: str | Path | None = None) -> CollectedInputs:
    """Expand files and folders (recursively, sorted) into input frames.

    Nothing here raises for one bad entry: special files, dangling links, link loops and frames of a
    folder with a bad ``depth.cal`` become frames with a ``problem`` (reported as unreadable rows);
    a depthface dataset's crop/label arrays and links to folders are listed in ``skipped``.
    ``exclude`` (the output folder) is never read as input.

    Raises:
        InputError: a path given explicitly does not exist, or a folder holds no depth file at all.
    """
    out = CollectedInputs()
    cache: dict = {}
    excl = Path(os.path.realpath(exclude)) if exclude is not None else None
    named: list[tuple[Path, str, Intrinsics | None, str | None]] = []
    for p in map(Path, paths):
        if not os.path.lexists(p):
            raise InputError("no such file or folder", display_name(p))
        if p.is_dir():
            files = _walk(p, out.skipped)
            if excl is not None:
                kept = [(f, k) for f, k in files if not Path(os.path.realpath(f)).is_relative_to(excl)]
                if len(kept) < len(files):
                    out.skipped.append(f"{display_name(excl)}: the output folder, not read as input "
                                       f"({len(files) - len(kept)} file(s))")
                files = kept
            if not files:
                raise InputError(f"folder holds no depth files ({', '.join(SUFFIXES)})", display_name(p))
            for f, k in files:
                lk, problem = _layout_intrinsics(f, cache)
                named.append((f, str(f.relative_to(p)), k or lk, file_problem(f) or problem))
        else:
            lk, problem = _layout_intrinsics(p, cache)
            named.append((p, p.name, lk, file_problem(p) or problem))
    names = [display_name(n) for _, n, _, _ in named]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    for (path, _, k, problem), n in zip(named, names):
        # the same name twice (explicit files of different folders): the path tells them apart
        out.frames.append(InputFrame(path, display_name(path) if counts[n] > 1 else n, k, problem))
    return out


# ----------------------------------------------------------------------------------------------
# writing


POSE_COLUMNS = ["frame", "found", "status", "confidence", "flagged", "yaw_deg", "pitch_deg", "roll_deg", "tx_mm", "ty_mm",
                "tz_mm", "qw", "qx", "qy", "qz", "r00", "r01", "r02", "r10", "r11", "r12", "r20", "r21", "r22",
                "output", "reason"]


def write_poses(out: Path, rows: list[dict]) -> None:
    """``poses.csv`` (one row per frame, header names units) and ``poses.json`` (with the conventions).

    Written to temporary files and renamed, so an interrupted write never leaves a half file."""
    out = Path(out)
    tmp = out / ".poses.csv.tmp"
    with tmp.open("w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        w = csv.DictWriter(f, POSE_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in POSE_COLUMNS})
    os.replace(tmp, out / "poses.csv")
    conventions = ("millimetres; OpenCV camera frame (x right, y down, z forward); pose maps the head frame to the "
                   "camera (p_cam = R p_head + t, t = head centre); quaternion w first; yaw/pitch/roll in degrees, "
                   "R = Rx(-pitch) Ry(yaw) Rz(roll) (the Biwi convention); see docs/conventions.md; "
                   "status: face, no face or unreadable (no pose unless status is face); confidence: calibrated "
                   "probability that the pose is within 10 deg of the truth, flagged: below the calibration's "
                   "threshold (the pose is likely off by more than 10 deg; docs/models.md)")
    tmp = out / ".poses.json.tmp"
    tmp.write_text(json.dumps({"conventions": conventions, "frames": rows}, indent=1, ensure_ascii=True) + "\n")
    os.replace(tmp, out / "poses.json")
