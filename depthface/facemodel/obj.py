"""Wavefront OBJ meshes: the one reader (and writer) of ``v`` and ``f`` records.

Used for raw ICT-FaceKit folders (:mod:`depthface.facemodel.loaders`) and FaceWarehouse meshes
(:mod:`depthface.data.facewarehouse`). The vertex order of the file is kept exactly and polygons stay
polygons (the ICT loader counts them; FaceWarehouse stores quads); ``vt``/``vn``/``o``/``g``/... records
are ignored, and so are a vertex's coordinates after the third (a ``w`` or a colour).

Face indices follow the OBJ rule: ``i > 0`` is the ``i``-th vertex of the file (1-based), ``i < 0``
counts back from the **last vertex read so far** (``-1`` is the vertex declared just before the face),
so a negative index means the same vertex wherever later ``v`` lines add more; ``0`` is invalid. Every
index must name a vertex of the file.

``trimesh`` (a dependency) also reads OBJ files, but not for this: it resolves negative indices against
the total vertex count (trimesh 4: ``f -3 -2 -1`` after the first three of six vertices gives 3 4 5),
triangulates (the polygons the ICT loader counts are lost; a quad becomes ``(0, 1, 2), (2, 3, 0)``) and
merges or splits vertices unless told not to. Speed on the packaged face model written as an OBJ (11,248
vertices, 22,288 faces, one thread): this reader 95 ms, ``trimesh.load(process=False)`` 77 ms (the two
readers it replaces: 117 and 161 ms).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthface.errors import InputError

__all__ = ["ObjMesh", "read_obj_mesh", "write_obj_mesh", "triangulate"]


@dataclass(frozen=True, eq=False)
class ObjMesh:
    """A polygon mesh as stored in an OBJ file.

    Attributes:
        vertices: ``(N, 3)`` float64 positions (file units).
        polygons: ``(F, k)`` int64 0-based vertex indices when every face has ``k`` vertices (e.g.
            ``k = 4`` for FaceWarehouse), else a list of ``F`` int64 arrays.
        faces: ``(T, 3)`` int64 triangles (each polygon fanned).
    """

    vertices: np.ndarray
    polygons: np.ndarray | list[np.ndarray]
    faces: np.ndarray


def triangulate(polygons: list[list[int]] | np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons: ``[a, b, c, d, ...]`` -> ``(a, b, c), (a, c, d), ...``, polygon by polygon.

    Args:
        polygons: ``(F, k)`` vertex indices, or ``F`` sequences of any lengths >= 3.

    Returns:
        ``(T, 3)`` int64 triangles.
    """
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        k = polygons.shape[1]
        fan = np.array([(0, j, j + 1) for j in range(1, k - 1)], dtype=np.int64).reshape(-1, 3)
        return polygons[:, fan].reshape(-1, 3).astype(np.int64)
    tris = [(p[0], p[i], p[i + 1]) for p in polygons for i in range(1, len(p) - 1)]
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _nth_face_line(lines: list[bytes], n: int) -> int:
    """The line number of the ``n``-th (0-based) ``f`` record (the error path)."""
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if parts and parts[0] == b"f":
            if n == 0:
                return lineno
            n -= 1
    return 0


def _bad_vertex_line(lines: list[bytes]) -> tuple[int, str]:
    """The first ``v`` line without three finite numbers: ``(line number, what is wrong)`` (the error path)."""
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if parts and parts[0] == b"v":
            text = line.decode(errors="replace").strip()
            if len(parts) < 4:
                return lineno, f"vertex needs 3 coordinates: {text!r}"
            try:
                [float(p) for p in parts[1:4]]
            except ValueError:
                return lineno, f"vertex is not numeric: {text!r}"
    return 0, "unreadable vertex"


def read_obj_mesh(path: str | Path, faces: bool = True) -> ObjMesh:
    """Read the vertices and (if ``faces``) the polygons of a Wavefront OBJ file (see the module docstring).

    Args:
        path: the ``.obj`` file.
        faces: read the ``f`` records too (``False``: only the vertices; ``polygons`` and ``faces`` empty).

    Returns:
        An :class:`ObjMesh`.

    Raises:
        InputError: unreadable file, no vertex, a vertex without three finite numbers, a face index that is
            not an integer, a face with fewer than 3 vertices, or an index out of range (each with its line).
    """
    path = Path(path)
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        raise InputError("mesh file not found", path) from None
    except OSError as e:
        raise InputError(f"cannot read mesh: {e.strerror or e}", path) from None
    verts: list[list[bytes]] = []
    raw: list[list[int]] = []  # the face records' indices as written
    before: list[int] = []  # how many vertices were read before each face record
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        tag = parts[0]
        if tag == b"v":
            verts.append(parts[1:4])
        elif faces and tag == b"f":
            try:
                idx = [int(tok.split(b"/", 1)[0]) for tok in parts[1:]]
            except ValueError:
                raise InputError(f"line {lineno}: face indices are not integers: "
                                 f"{line.decode(errors='replace').strip()!r}", path) from None
            if len(idx) < 3:
                raise InputError(f"line {lineno}: a face needs at least 3 vertices", path)
            raw.append(idx)
            before.append(len(verts))
    if not verts:
        raise InputError("mesh has no vertices ('v x y z' lines)", path)
    try:
        vertices = np.array(verts, dtype=np.float64)
    except ValueError:
        vertices = None
    if vertices is None or vertices.ndim != 2 or vertices.shape[1] != 3:
        lineno, problem = _bad_vertex_line(lines)
        raise InputError(f"line {lineno}: {problem}", path)
    if not np.isfinite(vertices).all():
        raise InputError("mesh has NaN/inf vertex coordinates", path)
    sizes = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
    flat = np.fromiter(itertools.chain.from_iterable(raw), dtype=np.int64, count=int(sizes.sum()))
    seen = np.repeat(np.asarray(before, dtype=np.int64), sizes)
    flat = np.where(flat > 0, flat - 1, np.where(flat < 0, seen + flat, -1))  # 1-based; negative: back from seen
    bad = np.flatnonzero((flat < 0) | (flat >= len(vertices)))
    if bad.size:
        lineno = _nth_face_line(lines, int(np.searchsorted(np.cumsum(sizes), bad[0], side="right")))
        raise InputError(f"line {lineno}: face index out of range (mesh has {len(vertices)} vertices): "
                         f"{lines[lineno - 1].decode(errors='replace').strip()!r}", path)
    polygons: np.ndarray | list[np.ndarray]
    if len(raw) == 0 or (sizes == sizes[0]).all():
        polygons = flat.reshape(len(raw), int(sizes[0]) if len(raw) else 3)
    else:
        polygons = np.split(flat, np.cumsum(sizes)[:-1])
    return ObjMesh(vertices, polygons, triangulate(polygons))


def write_obj_mesh(path: str | Path, vertices: np.ndarray, polygons: np.ndarray | list) -> Path:
    """Write ``v`` and ``f`` records (0-based polygons written 1-based; 17 significant digits)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(f"vertices must be (N, 3), got {vertices.shape}")
    lines = [f"v {x:.17g} {y:.17g} {z:.17g}" for x, y, z in vertices]
    lines += ["f " + " ".join(str(int(i) + 1) for i in p) for p in polygons]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
