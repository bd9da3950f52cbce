"""Finding and reading face-model files into a :class:`~depthface.facemodel.model.MorphableModel`.

Why one file (about 680 lines): every format reader below (npz, an ICT-FaceKit folder, BFM 2009 ``.mat``,
BFM 2017/2019 ``.h5``) is short and produces the same raw record, which one assembly step validates
(index ranges, finite values, landmark axes) and turns into a :class:`MorphableModel`, behind the one
search order of :func:`load_face_model` and the file-keyed caches. The shared checks are what keep the
formats consistent, so the readers stay beside them rather than in a module per format.

Search order of :func:`load_face_model` (the first that applies wins; an explicit or environment path
that does not exist is an error, never silently skipped):

1. the ``path`` argument;
2. the environment variable ``DEPTHFACE_FACE_MODEL``;
3. the copy that ships inside the package, ``depthface/facemodel/data/ict_facekit_head.npz`` (ICT-FaceKit,
   MIT; its licence ``ict_facekit_LICENSE.txt`` and a README of its fields lie beside it).

Formats, chosen by what the path is:

``*.npz`` — the ICT-FaceKit conversion described in ``shared/facemodels/README.md``: keys ``units``
    (``"cm"``), ``mean`` (V, 3), ``triangles`` (T, 3), ``identity_basis`` (V, 3, Ki) pre-scaled, and
    optionally ``expression_basis`` (V, 3, Ke) + ``expression_names``, ``identity_names``,
    ``triangle_region``, ``landmarks68``, ``rigid_landmarks9``, ``face_area_vertices``,
    ``narrow_face_vertices``. A licence file next to it (``ict_facekit_LICENSE.txt``, ``<stem>_LICENSE.txt``
    or ``LICENSE[.txt]``) is recorded as ``licence_path``.

a folder — the raw ICT-FaceKit layout (github.com/ICT-VGL/ICT-FaceKit, folder ``FaceXModel``, read the
    way its ``Scripts/face_model_io.py`` does): ``generic_neutral_mesh.obj``; identity morph targets
    ``identity000.obj``, ``identity001.obj``, ... read until the first missing number; one expression
    morph target ``<name>.obj`` per name in ``vertex_indices.json["expressions"]``; the 68 landmark
    vertices in ``vertex_indices.json["idx_to_landmark_verts"]``. Every morph target has the neutral
    mesh's topology; a mode is ``target - neutral`` (identity targets are mean + one pre-scaled PCA mode,
    so identity coefficients are N(0, 1); expression targets are neutral + one blendshape, weights in
    [0, 1]). Units cm, y up, face toward +z (as the npz). The folder may be ``FaceXModel`` itself or the
    repository root holding it; a folder holding a ``.npz`` model is read as that npz. For the official
    ICT Face Model Light topology (26,719 vertices, 26,384 polygons) only the face and the head and neck
    are kept (vertices 0-11247, polygons 0-11143: the npz's selection), with the face area 0-9408
    (polygons 0-9229 are region 0) and the narrow face 0-6705, as in the FaceKit README; any other
    topology is kept whole with every vertex in the face area. Polygons are fan-triangulated
    (a quad 0,1,2,3 -> (0,1,2), (0,2,3)).

``*.mat`` — Basel Face Model 2009 (``01_MorphableModel.mat``): ``shapeMU`` (3V, 1), ``shapePC`` (3V, K)
    orthonormal, ``shapeEV`` (K, 1) the **standard deviations** (not variances), ``tl`` (T, 3) 1-based.
    Units are **micrometres** (the BFM authors, unibas-gravis/basel-face-model-viewer issue #20: "BFM 2009
    micrometer, BFM 2017 and 2019 millimeter"). Identity basis = ``shapePC * shapeEV`` so coefficients are
    N(0, 1). No expressions (Ke = 0). Its triangles are stored clockwise (see eos'
    ``convert-bfm2009-to-eos.py``); winding is normalised on load. MATLAB v7.3 (HDF5) files are read too.

``*.h5`` / ``*.hdf5`` — Basel Face Model 2017/2019 (statismo layout): ``shape/model/mean`` (3V,),
    ``shape/model/pcaBasis`` (3V, K) orthonormal, ``shape/model/pcaVariance`` (K,) variances,
    ``shape/representer/cells`` (3, T) 0-based; optional ``expression/model/{mean, pcaBasis,
    pcaVariance}``. Units **millimetres**. Bases are ``pcaBasis * sqrt(pcaVariance)`` (N(0, 1)
    coefficients); the expression model's mean (a mean deformation) is added to the mean shape.

Basel files are assumed to use the same axes as ICT (y up, face toward +z, x toward the subject's
left; a right-handed frame). They have no 68-landmark list: give one with ``landmarks=`` (a ``.txt`` of
68 whitespace/comma separated 0-based vertex indices, a ``.npy``, or a sequence); without it the head
centre falls back to the mean's bounding-box centre and landmark use raises DepthfaceError. Their face
area is every vertex unless ``face_area=`` is given. When landmarks are known they are sanity-checked
against the axes (nose tip in front of the eyes, chin below them, landmark 45 to the subject's left).

Every problem with a file is a one-line :class:`~depthface.errors.DepthfaceError` naming the file, what
is wrong, and how to point depthface at a model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depthface.errors import DepthfaceError, InputError
from depthface.facemodel.model import RIGID_LANDMARK_IDS, MorphableModel
from depthface.facemodel.obj import read_obj_mesh, triangulate

#: Environment variable naming a face model file or folder.
ENV_VAR: str = "DEPTHFACE_FACE_MODEL"

#: File name of the default model.
DEFAULT_MODEL_NAME: str = "ict_facekit_head.npz"

#: The default model shipped inside the package (with its licence beside it).
PACKAGED_MODEL: Path = Path(__file__).resolve().parent / "data" / DEFAULT_MODEL_NAME

_HINT = (f"point depthface at a face model with an explicit path or the {ENV_VAR} environment variable "
         "(an ICT-FaceKit .npz or FaceXModel folder, or a Basel Face Model .mat/.h5)")

_UNIT_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "dm": 100.0, "um": 1e-3, "µm": 1e-3, "micrometre": 1e-3,
               "micrometer": 1e-3, "millimetre": 1.0, "millimeter": 1.0, "centimetre": 10.0, "centimeter": 10.0}

# The official ICT Face Model Light topology and the ranges kept from it (ICT-FaceKit README tables).
_ICT_FULL_VERTICES = 26719
_ICT_FULL_POLYGONS = 26384
_ICT_KEEP_VERTICES = 11248  # face 0-9408 + head and neck 9409-11247
_ICT_KEEP_POLYGONS = 11144  # polygons 0-11143
_ICT_FACE_VERTICES = 9409
_ICT_FACE_POLYGONS = 9230
_ICT_NARROW_VERTICES = 6706


def _fail(path: str | Path | None, problem: str) -> DepthfaceError:
    return DepthfaceError(f"{problem}; {_HINT}", path)


# ---------------------------------------------------------------------------------------------- search


def default_model_candidates() -> list[Path]:
    """The places searched for the default model, in order (see the module docstring): the packaged copy."""
    return [PACKAGED_MODEL]


def resolve_face_model_path(path: str | Path | None = None) -> Path:
    """The face model path :func:`load_face_model` would read: explicit, then ``$DEPTHFACE_FACE_MODEL``,
    then the shared default. Raises DepthfaceError if the chosen path does not exist or none is found."""
    if path is not None and str(path) != "":
        p = Path(path).expanduser()
        if not p.exists():
            raise _fail(p, "face model not found")
        return p
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.exists():
            raise _fail(p, f"face model named by {ENV_VAR} not found")
        return p
    candidates = default_model_candidates()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DepthfaceError(
        f"no face model found (looked in {', '.join(str(c) for c in candidates)}); {_HINT}"
    )


# ---------------------------------------------------------------------------------------------- raw arrays


@dataclass
class _Raw:
    """A model as read from a file: numpy arrays in the file's frame and units."""

    format: str
    mean: np.ndarray  # (V, 3)
    identity_basis: np.ndarray  # (V, 3, Ki)
    expression_basis: np.ndarray | None  # (V, 3, Ke)
    triangles: np.ndarray  # (T, 3) 0-based
    unit_to_mm: float
    units: str
    sha256: str
    triangle_region: np.ndarray | None = None
    landmarks68: np.ndarray | None = None
    rigid_landmarks9: np.ndarray | None = None
    face_area: np.ndarray | None = None
    narrow_face: np.ndarray | None = None
    identity_names: list[str] | None = None
    expression_names: list[str] | None = None
    expression_kind: str | None = None
    licence_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _freeze(raw: _Raw) -> _Raw:
    for value in vars(raw).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return raw


def _check_indices(path: Path, name: str, values: np.ndarray, limit: int, ndim: int = 1) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != ndim or not (np.issubdtype(values.dtype, np.integer)
                                   or (np.issubdtype(values.dtype, np.floating)
                                       and np.all(np.isfinite(values)) and np.all(values == np.round(values)))):
        raise _fail(path, f"{name!r} must be a {ndim}-D array of integer indices, got shape "
                          f"{values.shape} {values.dtype}")
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= limit):
        raise _fail(path, f"{name!r} holds indices in [{values.min()}, {values.max()}] outside 0..{limit - 1}")
    return values


def _check_finite(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
        raise _fail(path, f"{name!r} holds non-numeric or non-finite values")
    return values


def _find_licence(folder: Path, stem: str) -> Path | None:
    for name in ("ict_facekit_LICENSE.txt", f"{stem}_LICENSE.txt", "LICENSE.txt", "LICENSE", "LICENSE.md"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


# ---- ICT npz

_NPZ_REQUIRED = ("units", "mean", "triangles", "identity_basis")


@functools.lru_cache(maxsize=4)
def _read_npz_cached(key: tuple[str, int, int]) -> _Raw:
    path = Path(key[0])
    with open(path, "rb") as fid:
        magic = fid.read(4)
    if magic[:2] != b"PK":
        raise _fail(path, "not an .npz archive (no zip signature): the file is corrupt, truncated or of another "
                          "format")
    try:
        # np.load is given an open file so that a failure inside it cannot leak the handle
        with open(path, "rb") as fid, np.load(fid, allow_pickle=False) as data:
            missing = [k for k in _NPZ_REQUIRED if k not in data.files]
            if missing:
                raise _fail(path, f"not a depthface face model .npz: missing array(s) {', '.join(missing)} "
                                  f"(has {', '.join(sorted(data.files)) or 'none'})")
            arrays = {k: data[k] for k in data.files}
    except DepthfaceError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, ...
        raise _fail(path, f"cannot read the .npz face model, the file is corrupt or truncated "
                          f"({type(exc).__name__}: {exc})".replace("\n", " ")) from None

    units = str(arrays["units"])
    if units not in _UNIT_TO_MM:
        raise _fail(path, f"unknown length unit {units!r} in 'units' (expected one of {sorted(_UNIT_TO_MM)})")
    mean = _check_finite(path, "mean", arrays["mean"])
    if mean.ndim != 2 or mean.shape[1] != 3 or mean.shape[0] < 3:
        raise _fail(path, f"'mean' has shape {mean.shape}, expected (V, 3)")
    V = mean.shape[0]
    ib = _check_finite(path, "identity_basis", arrays["identity_basis"])
    if ib.ndim != 3 or ib.shape[:2] != (V, 3):
        raise _fail(path, f"'identity_basis' has shape {ib.shape}, expected ({V}, 3, Ki)")
    eb = arrays.get("expression_basis")
    if eb is not None:
        _check_finite(path, "expression_basis", eb)
        if eb.ndim != 3 or eb.shape[:2] != (V, 3):
            raise _fail(path, f"'expression_basis' has shape {eb.shape}, expected ({V}, 3, Ke)")
    tris = _check_indices(path, "triangles", arrays["triangles"], V, ndim=2)
    if tris.shape[1] != 3:
        raise _fail(path, f"'triangles' has shape {tris.shape}, expected (T, 3)")
    raw = _Raw(format="ict-npz", mean=mean, identity_basis=ib, expression_basis=eb, triangles=tris,
               unit_to_mm=_UNIT_TO_MM[units], units=units, sha256=_sha256_file(path),
               licence_path=_find_licence(path.parent, path.stem))
    if "triangle_region" in arrays:
        region = arrays["triangle_region"]
        if region.shape != (len(tris),):
            raise _fail(path, f"'triangle_region' has shape {region.shape}, expected ({len(tris)},)")
        raw.triangle_region = region.astype(np.uint8)
    for key_, attr, size in (("landmarks68", "landmarks68", 68), ("rigid_landmarks9", "rigid_landmarks9", 9),
                             ("face_area_vertices", "face_area", None),
                             ("narrow_face_vertices", "narrow_face", None)):
        if key_ in arrays:
            values = _check_indices(path, key_, arrays[key_], V)
            if size is not None and values.shape != (size,):
                raise _fail(path, f"{key_!r} has shape {values.shape}, expected ({size},)")
            setattr(raw, attr, values)
    for key_, attr, count in (("identity_names", "identity_names", ib.shape[2]),
                              ("expression_names", "expression_names", 0 if eb is None else eb.shape[2])):
        if key_ in arrays:
            names = [str(n) for n in np.asarray(arrays[key_]).reshape(-1)]
            if len(names) != count:
                raise _fail(path, f"{key_!r} has {len(names)} names for {count} modes")
            setattr(raw, attr, names)
    raw.expression_kind = "blendshapes" if eb is not None and eb.shape[2] else "none"
    return _freeze(raw)


# ---- raw ICT-FaceKit folder


def _read_obj(path: Path, faces: bool) -> tuple[np.ndarray, np.ndarray | list[np.ndarray] | None]:
    """Vertices ``(V, 3)`` and (if ``faces``) 0-based polygons of an OBJ file (:func:`read_obj_mesh`)."""
    try:
        mesh = read_obj_mesh(path, faces=faces)
    except InputError as exc:
        raise _fail(path, str(exc).removeprefix(f"{path}: ")) from None
    return mesh.vertices, (mesh.polygons if faces else None)


def _ict_folder(path: Path) -> Path | None:
    for candidate in (path, path / "FaceXModel"):
        if (candidate / "generic_neutral_mesh.obj").is_file():
            return candidate
    return None


def _folder_key(folder: Path) -> tuple:
    entries = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in (".obj", ".json") and p.is_file():
            st = p.stat()
            entries.append((p.name, st.st_mtime_ns, st.st_size))
    return (str(folder.resolve()), tuple(entries))


@functools.lru_cache(maxsize=2)
def _read_ict_folder_cached(key: tuple) -> _Raw:
    folder = Path(key[0])
    digests: list[tuple[str, str]] = []

    def read(name: str, faces: bool = False) -> tuple[np.ndarray, list[list[int]] | None]:
        p = folder / name
        digests.append((name, _sha256_file(p)))
        return _read_obj(p, faces)

    config_path = folder / "vertex_indices.json"
    if not config_path.is_file():
        raise _fail(folder, "ICT-FaceKit folder without vertex_indices.json (it names the expressions and "
                            "landmarks)")
    try:
        config = json.loads(config_path.read_text())
        expression_names = [str(n) for n in config.get("expressions", [])]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise _fail(config_path, f"not a readable ICT-FaceKit vertex_indices.json ({type(exc).__name__})") from None
    digests.append((config_path.name, _sha256_file(config_path)))

    neutral, polys = read("generic_neutral_mesh.obj", faces=True)
    assert polys is not None
    V_full = len(neutral)  # (the reader checked every polygon's indices)

    official = V_full == _ICT_FULL_VERTICES and len(polys) == _ICT_FULL_POLYGONS
    if official:
        keep_v, keep_p = _ICT_KEEP_VERTICES, _ICT_KEEP_POLYGONS
    else:
        keep_v, keep_p = V_full, len(polys)
    kept = polys[:keep_p]
    tris = triangulate(kept)  # fan: (0,1,2), (0,2,3), ...
    poly_region = np.zeros(len(kept), dtype=np.uint8)
    if official:
        poly_region[_ICT_FACE_POLYGONS:] = 1
    region = np.repeat(poly_region, [len(poly) - 2 for poly in kept])
    if tris.size and tris.max() >= keep_v:
        raise _fail(folder / "generic_neutral_mesh.obj", "kept polygons refer to dropped vertices")

    def modes(names: list[str]) -> np.ndarray:
        out = np.empty((keep_v, 3, len(names)), dtype=np.float32)
        for k, name in enumerate(names):
            target, _ = read(f"{name}.obj")
            if target.shape != neutral.shape:
                raise _fail(folder / f"{name}.obj", f"has {len(target)} vertices, the neutral mesh "
                                                    f"{V_full}: not the same topology")
            out[:, :, k] = (target - neutral)[:keep_v]
        return out

    identity_names = []
    while (folder / f"identity{len(identity_names):03d}.obj").is_file():
        identity_names.append(f"identity{len(identity_names):03d}")
    missing = [n for n in expression_names if not (folder / f"{n}.obj").is_file()]
    if missing:
        raise _fail(folder / f"{missing[0]}.obj", f"expression morph target missing "
                                                  f"({len(missing)} of {len(expression_names)} named in "
                                                  "vertex_indices.json are absent)")
    ib = modes(identity_names)
    eb = modes(expression_names)

    combined = hashlib.sha256()
    for name, digest in sorted(digests):
        combined.update(f"{name}\0{digest}\n".encode())
    licence = _find_licence(folder, "ict_facekit") or _find_licence(folder.parent, "ict_facekit")
    raw = _Raw(format="ict-folder", mean=neutral[:keep_v], identity_basis=ib, expression_basis=eb,
               triangles=tris, triangle_region=np.array(region, dtype=np.uint8), unit_to_mm=10.0, units="cm",
               sha256=combined.hexdigest(), identity_names=identity_names, expression_names=expression_names,
               expression_kind="blendshapes" if expression_names else "none", licence_path=licence)
    if official:
        raw.face_area = np.arange(_ICT_FACE_VERTICES)
        raw.narrow_face = np.arange(_ICT_NARROW_VERTICES)
    if "idx_to_landmark_verts" in config:
        lms = _check_indices(config_path, "idx_to_landmark_verts", np.asarray(config["idx_to_landmark_verts"]),
                             keep_v)
        if lms.shape != (68,):
            raise _fail(config_path, f"'idx_to_landmark_verts' has {lms.size} entries, expected 68")
        raw.landmarks68 = lms
        rigid_ids = config.get("idx_to_rigid_landmark_idx", list(RIGID_LANDMARK_IDS))
        raw.rigid_landmarks9 = lms[_check_indices(config_path, "idx_to_rigid_landmark_idx",
                                                  np.asarray(rigid_ids), 68)]
    return _freeze(raw)


# ---- Basel Face Model 2009 (.mat)


def _read_mat_arrays(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays of a MATLAB file (v5/v7 via scipy, v7.3 via h5py; HDF5 arrays are transposed back)."""
    import scipy.io

    try:
        data = scipy.io.loadmat(str(path), variable_names=list(keys))
        return {k: np.asarray(v) for k, v in data.items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        pass
    except Exception as exc:  # MatReadError, ValueError, OSError, TypeError, zlib errors, ...
        raise _fail(path, f"cannot read the .mat face model, the file is corrupt or not a MATLAB file "
                          f"({type(exc).__name__})") from None
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: np.asarray(f[k]).T for k in keys if k in f}
    except Exception as exc:
        raise _fail(path, f"cannot read the MATLAB v7.3 face model ({type(exc).__name__})") from None


@functools.lru_cache(maxsize=2)
def _read_bfm2009_cached(key: tuple[str, int, int]) -> _Raw:
    path = Path(key[0])
    arrays = _read_mat_arrays(path, ["shapeMU", "shapePC", "shapeEV", "tl"])
    missing = [k for k in ("shapeMU", "shapePC", "shapeEV", "tl") if k not in arrays]
    if missing:
        raise _fail(path, f"not a Basel Face Model 2009 .mat: missing {', '.join(missing)}")
    mu = _check_finite(path, "shapeMU", arrays["shapeMU"])
    pc = _check_finite(path, "shapePC", arrays["shapePC"])
    ev = _check_finite(path, "shapeEV", arrays["shapeEV"])
    if mu.ndim != 2 or 1 not in mu.shape or mu.size % 3 or mu.size == 0:
        raise _fail(path, f"'shapeMU' has shape {mu.shape}, expected (3V, 1)")
    n = mu.size
    V = n // 3
    if pc.ndim != 2 or pc.shape[0] != n:
        raise _fail(path, f"'shapePC' has shape {pc.shape}, expected ({n}, K) to match shapeMU")
    K = pc.shape[1]
    if ev.size != K or (ev.ndim == 2 and 1 not in ev.shape) or ev.ndim > 2:
        raise _fail(path, f"'shapeEV' has shape {ev.shape}, expected ({K}, 1) to match shapePC")
    tl = np.asarray(arrays["tl"])
    if tl.ndim != 2 or tl.shape[1] != 3:
        raise _fail(path, f"'tl' has shape {tl.shape}, expected (T, 3)")
    tris = _check_indices(path, "tl", tl, V + 1, ndim=2)
    if tris.size and tris.min() < 1:
        raise _fail(path, "'tl' holds index 0, but BFM triangle indices are 1-based")
    basis = (pc.astype(np.float64) * ev.reshape(1, K)).reshape(V, 3, K)
    return _freeze(_Raw(format="bfm2009", mean=mu.reshape(V, 3).astype(np.float64), identity_basis=basis,
                        expression_basis=None, triangles=tris - 1, unit_to_mm=1e-3, units="um",
                        sha256=_sha256_file(path), expression_kind="none"))


# ---- Basel Face Model 2017/2019 (.h5)


@functools.lru_cache(maxsize=2)
def _read_bfm2017_cached(key: tuple[str, int, int]) -> _Raw:
    import h5py

    path = Path(key[0])
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise _fail(path, f"cannot read the .h5 face model, the file is corrupt or not HDF5 "
                          f"({type(exc).__name__})") from None
    try:
        with f:
            def get(name: str, required: bool = True) -> np.ndarray | None:
                if name not in f:
                    if required:
                        raise _fail(path, f"not a Basel Face Model 2017 .h5: missing {name!r}")
                    return None
                return np.asarray(f[name][()])

            mean = _check_finite(path, "shape/model/mean", get("shape/model/mean"))
            basis = _check_finite(path, "shape/model/pcaBasis", get("shape/model/pcaBasis"))
            var = _check_finite(path, "shape/model/pcaVariance", get("shape/model/pcaVariance"))
            cells = get("shape/representer/cells")
            has_expr = "expression/model" in f
            if has_expr:
                e_mean = _check_finite(path, "expression/model/mean", get("expression/model/mean"))
                e_basis = _check_finite(path, "expression/model/pcaBasis", get("expression/model/pcaBasis"))
                e_var = _check_finite(path, "expression/model/pcaVariance", get("expression/model/pcaVariance"))
    except DepthfaceError:
        raise
    except Exception as exc:
        raise _fail(path, f"cannot read the .h5 face model ({type(exc).__name__})") from None

    mean = mean.reshape(-1)
    if mean.size % 3 or mean.size == 0:
        raise _fail(path, f"'shape/model/mean' has {mean.size} values, expected 3V")
    n, V = mean.size, mean.size // 3

    def scaled(name: str, b: np.ndarray, v: np.ndarray) -> np.ndarray:
        if b.ndim != 2 or b.shape[0] != n:
            raise _fail(path, f"'{name}/pcaBasis' has shape {b.shape}, expected ({n}, K)")
        v = v.reshape(-1)
        if v.size != b.shape[1] or (v < 0).any():
            raise _fail(path, f"'{name}/pcaVariance' has {v.size} values (need {b.shape[1]}, all >= 0)")
        return (b.astype(np.float64) * np.sqrt(v)[None, :]).reshape(V, 3, -1)

    ib = scaled("shape/model", basis, var)
    cells = np.asarray(cells)
    if cells.ndim != 2 or 3 not in cells.shape:
        raise _fail(path, f"'shape/representer/cells' has shape {cells.shape}, expected (3, T)")
    if cells.shape[0] == 3:  # statismo stores (3, T); accept (T, 3) too
        cells = cells.T
    tris = _check_indices(path, "shape/representer/cells", cells, V, ndim=2)
    eb = None
    if has_expr:
        e_mean = e_mean.reshape(-1)
        if e_mean.size != n:
            raise _fail(path, f"'expression/model/mean' has {e_mean.size} values, expected {n}")
        eb = scaled("expression/model", e_basis, e_var)
        mean = mean + e_mean
    return _freeze(_Raw(format="bfm2017", mean=mean.reshape(V, 3).astype(np.float64), identity_basis=ib,
                        expression_basis=eb, triangles=tris, unit_to_mm=1.0, units="mm",
                        sha256=_sha256_file(path), expression_kind="pca" if eb is not None else "none",
                        expression_names=None if eb is None else [f"expressionPC{k:03d}"
                                                                  for k in range(eb.shape[2])]))


# ---------------------------------------------------------------------------------------------- assembly


def _index_input(value: Any, what: str, limit: int, model_path: Path) -> np.ndarray:
    """Vertex indices from a file (.npy or text) or a sequence / array / tensor."""
    where = model_path
    if isinstance(value, (str, Path)):
        where = Path(value)
        if not where.is_file():
            raise DepthfaceError(f"{what} file not found", where)
        try:
            if where.suffix.lower() == ".npy":
                arr = np.load(where, allow_pickle=False)
            else:
                text = where.read_text()
                tokens = " ".join(line.split("#", 1)[0] for line in text.splitlines()).replace(",", " ").split()
                arr = np.array([float(t) for t in tokens])
        except Exception as exc:
            raise DepthfaceError(f"cannot read the {what} ({type(exc).__name__}); expected a .npy or a text file "
                                 "of 0-based vertex indices", where) from None
    elif isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy()
    else:
        arr = np.asarray(value)
    arr = np.asarray(arr).reshape(-1)
    if arr.dtype == object:
        raise DepthfaceError(f"{what} must be integer vertex indices", where)
    return _check_indices(where, what, arr, limit)


def _check_landmark_axes(path: Path, mean: np.ndarray, landmarks: np.ndarray) -> None:
    """Landmarks vs the expected file axes (y up, face toward +z, x to the subject's left)."""
    eyes = mean[landmarks[[36, 39, 42, 45]]].mean(axis=0)
    nose, chin = mean[landmarks[30]], mean[landmarks[8]]
    right_eye, left_eye = mean[landmarks[36]], mean[landmarks[45]]
    problems = []
    if not nose[2] > eyes[2]:
        problems.append("the nose tip (30) is not in front of (+z) the eyes")
    if not chin[1] < eyes[1]:
        problems.append("the chin (8) is not below (-y) the eyes")
    if not left_eye[0] > right_eye[0]:
        problems.append("the left eye's outer corner (45) is not at larger x than the right eye's (36)")
    if problems:
        raise DepthfaceError(
            f"the 68 landmarks do not fit the model's axes (y up, face toward +z, x to the subject's left): "
            f"{'; '.join(problems)} — wrong landmark file, or 1-based indices?", path)


def _assemble(raw: _Raw, path: Path, name: str, landmarks: Any, face_area: Any) -> MorphableModel:
    V = raw.mean.shape[0]
    lms = raw.landmarks68
    rigid = raw.rigid_landmarks9
    if landmarks is not None:
        lms = _index_input(landmarks, "landmarks", V, path)
        if lms.shape != (68,):
            raise DepthfaceError(f"landmarks must be 68 vertex indices, got {lms.size}",
                                 landmarks if isinstance(landmarks, (str, Path)) else path)
        rigid = None
    if lms is not None:
        _check_landmark_axes(path, raw.mean, lms)
        if rigid is None:
            rigid = lms[list(RIGID_LANDMARK_IDS)]
    area = raw.face_area
    narrow = raw.narrow_face
    region = raw.triangle_region
    if face_area is not None:
        area = _index_input(face_area, "face area", V, path)
        narrow = area
        in_area = np.zeros(V, bool)
        in_area[area] = True
        region = np.where(in_area[raw.triangles].all(axis=1), 0, 1).astype(np.uint8)
    if narrow is None:
        narrow = area
    model = MorphableModel.from_model_frame(
        mean=raw.mean, identity_basis=raw.identity_basis, expression_basis=raw.expression_basis,
        triangles=raw.triangles, unit_to_mm=raw.unit_to_mm, landmarks68=lms, triangle_region=region,
        face_area=None if area is None else torch.tensor(area, dtype=torch.int64),
        narrow_face=None if narrow is None else torch.tensor(narrow, dtype=torch.int64),
        rigid_landmarks9=None if rigid is None else torch.tensor(rigid, dtype=torch.int64),
        identity_names=raw.identity_names, expression_names=raw.expression_names,
        expression_kind=raw.expression_kind, name=name, source_units=raw.units, format=raw.format,
        source=path, sha256=raw.sha256, licence_path=raw.licence_path,
    )
    return model


def load_face_model(
    path: str | Path | None = None,
    *,
    landmarks: str | Path | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    face_area: str | Path | Sequence[int] | np.ndarray | torch.Tensor | None = None,
) -> MorphableModel:
    """Load a morphable face model, converted to mm in the canonical head frame.

    Args:
        path: a ``.npz`` (ICT-FaceKit conversion), an ICT-FaceKit folder, a Basel Face Model 2009
            ``.mat`` or 2017/2019 ``.h5``. ``None``: ``$DEPTHFACE_FACE_MODEL``, then the shared default
            (see the module docstring for the search and the formats).
        landmarks: 68 0-based vertex indices in iBUG order (file or sequence); overrides the file's.
            Needed for Basel models to place the head centre and to use landmarks.
        face_area: vertex indices of the regressed face area (file or sequence); overrides the file's
            (default: the file's face area, or every vertex).

    Returns:
        A :class:`MorphableModel` on the CPU (float32).

    Raises:
        DepthfaceError: one line naming the file, the problem and how to point depthface at a model.
    """
    p = resolve_face_model_path(path)
    if p.is_dir():
        folder = _ict_folder(p)
        if folder is not None:
            raw = _read_ict_folder_cached(_folder_key(folder))
            return _assemble(raw, folder, folder.name if folder.name != "FaceXModel" else "ict_facekit_raw",
                             landmarks, face_area)
        npz = p / DEFAULT_MODEL_NAME
        if not npz.is_file():
            found = sorted(p.glob("*.npz"))
            npz = found[0] if len(found) == 1 else npz
        if npz.is_file():
            p = npz
        else:
            raise _fail(p, "folder holds no face model (looked for FaceXModel/generic_neutral_mesh.obj, "
                           f"generic_neutral_mesh.obj and {DEFAULT_MODEL_NAME})")
    elif p.name == "generic_neutral_mesh.obj" or p.name == "vertex_indices.json":
        return load_face_model(p.parent, landmarks=landmarks, face_area=face_area)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        raw = _read_npz_cached(_stat_key(p))
    elif suffix == ".mat":
        raw = _read_bfm2009_cached(_stat_key(p))
    elif suffix in (".h5", ".hdf5"):
        raw = _read_bfm2017_cached(_stat_key(p))
    else:
        raise _fail(p, f"unsupported face model format {suffix or '(no suffix)'!r}: expected .npz, .mat, .h5 or "
                       "an ICT-FaceKit folder")
    return _assemble(raw, p, p.stem, landmarks, face_area)
