"""A linear morphable face model in millimetres in the canonical head frame.

Why one file (about 500 lines): it is one class, :class:`MorphableModel`, whose methods (construction and
the model-frame conversion, coefficients, vertices, displacements, landmarks and regions, posing,
seeded sampling, mesh export) all read the same bases and index sets. Reading model files is
:mod:`depthface.facemodel.loaders`; fitting a model to depth is :mod:`depthface.facemodel.fit`.

A face is ``V = mean + identity_basis @ alpha + expression_basis @ beta`` with ``alpha ~ N(0, I)``
(the identity basis is pre-scaled by the PCA standard deviations) and ``beta`` either blendshape
weights in ``[0, 1]`` (ICT-FaceKit) or ``N(0, I)`` PCA coefficients (Basel Face Model 2017).

Frames (see :mod:`depthface.geometry.conventions`): face-model files use a frame with y up, the face
looking toward +z and x toward the subject's left, in their own length unit. They are converted once,
by :meth:`MorphableModel.from_model_frame`::

    p_head = diag(1, -1, -1) @ (unit_to_mm * p_model) - c

where ``c`` is the head centre: the centroid of the mean shape's eye corners
(:data:`~depthface.geometry.conventions.EYE_CORNER_LANDMARKS`) moved
:data:`~depthface.geometry.conventions.HEAD_CENTRE_BEHIND_EYES_MM` along head +z (into the skull).
``diag(1, -1, -1)`` is a rotation (det = +1), so triangle winding is unchanged: triangles are
counter-clockwise seen from outside, and outward normals ``(b - a) x (c - a)`` on the face point toward
head -z, i.e. toward the camera at the identity pose.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from depthface.errors import DepthfaceError
from depthface.geometry.conventions import EYE_CORNER_LANDMARKS, HEAD_CENTRE_BEHIND_EYES_MM

#: Rotation taking a face-model file's axes (y up, face toward +z, x to the subject's left) to the
#: head frame's axes (y down, z into the skull, x to the subject's left). A proper rotation.
MODEL_TO_HEAD_AXES: np.ndarray = np.diag([1.0, -1.0, -1.0])

#: iBUG-68 indices of the nine rigid landmarks used for rigid alignment (the paper's nine).
RIGID_LANDMARK_IDS: tuple[int, ...] = (0, 36, 39, 42, 45, 16, 28, 31, 35)

#: How the expression coefficients are distributed: ``"blendshapes"`` (weights in [0, 1]),
#: ``"pca"`` (N(0, 1) coefficients) or ``"none"`` (no expression basis, Ke = 0).
EXPRESSION_KINDS: tuple[str, ...] = ("blendshapes", "pca", "none")

_AXIS_SIGNS = np.array([1.0, -1.0, -1.0])  # the diagonal of MODEL_TO_HEAD_AXES


def _as_generator(generator: torch.Generator | int) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(int(generator))
    raise TypeError(f"generator must be a torch.Generator or an int seed, got {type(generator).__name__}")


def _index_tensor(values: Any) -> Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.int64) if not isinstance(values, Tensor) else values,
                           dtype=torch.int64).reshape(-1)


class MorphableModel:
    """A linear 3D morphable face model (shape only), in mm in the canonical head frame.

    Build one with :func:`depthface.facemodel.load_face_model` (or :meth:`from_model_frame`). Tensors
    are read-only by convention; :meth:`to` returns a moved copy.

    Attributes:
        name: short name of the model (the file's stem).
        mean: ``(V, 3)`` float32 mean shape, mm, head frame (the head centre is the origin).
        identity_basis: ``(V, 3, Ki)`` identity modes, mm per unit coefficient (coefficients ~ N(0, 1)).
        expression_basis: ``(V, 3, Ke)`` expression modes, mm per unit coefficient (Ke may be 0).
        triangles: ``(T, 3)`` int64 vertex indices, counter-clockwise seen from outside.
        triangle_region: ``(T,)`` uint8, 0 = face area, 1 = the rest (head, neck).
        face_area: ``(Vf,)`` int64 vertices of the facial region that shape is regressed and evaluated on.
        narrow_face: ``(Vn,)`` int64 vertices of a tighter facial crop (== face_area where the model has none).
        identity_names, expression_names: names of the modes (``len == Ki``, ``len == Ke``).
        expression_kind: one of :data:`EXPRESSION_KINDS`.
        head_centre_model: ``(3,)`` float64 numpy, the head centre in the file's units and axes.
        head_centre_source: how the head centre was found (``"eye corners"`` or a documented fallback).
        unit_to_mm: the file's length unit in mm (10 for cm, 1e-3 for micrometres).
        source_units: the file's length unit as a word (``"cm"``, ``"mm"``, ``"um"``).
        format: which loader read it (``"ict-npz"``, ``"ict-folder"``, ``"bfm2009"``, ``"bfm2017"``, ...).
        source: the file or folder it was read from (``None`` if built in memory).
        sha256: hex digest of the source file (of the sorted per-file digests for a folder).
        licence_path: the licence file that must travel with copies of the model, when known.
    """

    def __init__(
        self,
        *,
        mean: Tensor,
        identity_basis: Tensor,
        expression_basis: Tensor,
        triangles: Tensor,
        triangle_region: Tensor | None = None,
        face_area: Tensor | None = None,
        narrow_face: Tensor | None = None,
        landmarks68: Tensor | None = None,
        rigid_landmarks9: Tensor | None = None,
        identity_names: Sequence[str] | None = None,
        expression_names: Sequence[str] | None = None,
        expression_kind: str | None = None,
        name: str = "face model",
        head_centre_model: np.ndarray | None = None,
        head_centre_source: str = "given",
        unit_to_mm: float = 1.0,
        source_units: str = "mm",
        format: str = "memory",
        source: str | Path | None = None,
        sha256: str = "",
        licence_path: str | Path | None = None,
    ) -> None:
        if mean.ndim != 2 or mean.shape[1] != 3:
            raise ValueError(f"mean must be (V, 3), got {tuple(mean.shape)}")
        V = mean.shape[0]
        for label, basis in (("identity_basis", identity_basis), ("expression_basis", expression_basis)):
            if basis.ndim != 3 or basis.shape[:2] != (V, 3):
                raise ValueError(f"{label} must be (V={V}, 3, K), got {tuple(basis.shape)}")
        if triangles.ndim != 2 or triangles.shape[1] != 3:
            raise ValueError(f"triangles must be (T, 3), got {tuple(triangles.shape)}")
        T = triangles.shape[0]
        self.name = name
        self.mean = mean
        self.identity_basis = identity_basis
        self.expression_basis = expression_basis
        self.triangles = triangles.to(torch.int64)
        self.triangle_region = (torch.zeros(T, dtype=torch.uint8, device=mean.device) if triangle_region is None
                                else triangle_region.to(torch.uint8))
        if self.triangle_region.shape != (T,):
            raise ValueError(f"triangle_region must be (T={T},), got {tuple(self.triangle_region.shape)}")
        self.face_area = (torch.arange(V, device=mean.device) if face_area is None else face_area.to(torch.int64))
        self.narrow_face = self.face_area if narrow_face is None else narrow_face.to(torch.int64)
        self._landmarks68 = None if landmarks68 is None else landmarks68.to(torch.int64)
        if self._landmarks68 is not None and self._landmarks68.shape != (68,):
            raise ValueError(f"landmarks68 must be (68,), got {tuple(self._landmarks68.shape)}")
        if rigid_landmarks9 is None and self._landmarks68 is not None:
            rigid_landmarks9 = self._landmarks68[list(RIGID_LANDMARK_IDS)]
        self._rigid_landmarks9 = None if rigid_landmarks9 is None else rigid_landmarks9.to(torch.int64)
        Ki, Ke = identity_basis.shape[2], expression_basis.shape[2]
        self.identity_names = tuple(identity_names) if identity_names is not None else tuple(
            f"identity{k:03d}" for k in range(Ki))
        self.expression_names = tuple(expression_names) if expression_names is not None else tuple(
            f"expression{k:03d}" for k in range(Ke))
        if len(self.identity_names) != Ki or len(self.expression_names) != Ke:
            raise ValueError("identity_names / expression_names must have one name per mode")
        if expression_kind is None:
            expression_kind = "blendshapes" if Ke else "none"
        if expression_kind not in EXPRESSION_KINDS:
            raise ValueError(f"expression_kind must be one of {EXPRESSION_KINDS}, got {expression_kind!r}")
        self.expression_kind = "none" if Ke == 0 else expression_kind
        self.head_centre_model = (np.zeros(3) if head_centre_model is None
                                  else np.asarray(head_centre_model, dtype=np.float64).reshape(3))
        self.head_centre_source = head_centre_source
        self.unit_to_mm = float(unit_to_mm)
        self.source_units = source_units
        self.format = format
        self.source = None if source is None else Path(source)
        self.sha256 = sha256
        self.licence_path = None if licence_path is None else Path(licence_path)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_model_frame(
        cls,
        *,
        mean: np.ndarray,
        identity_basis: np.ndarray,
        expression_basis: np.ndarray | None,
        triangles: np.ndarray,
        unit_to_mm: float,
        landmarks68: np.ndarray | None = None,
        triangle_region: np.ndarray | None = None,
        fix_winding: bool = True,
        **metadata: Any,
    ) -> "MorphableModel":
        """Convert arrays in a file's frame (y up, face toward +z, x to the subject's left) to a model.

        ``p_head = diag(1, -1, -1) @ (unit_to_mm * p_model) - c``; the bases are rotated and scaled the
        same way (no shift). ``c`` is the head centre from the eye-corner landmarks of ``mean``; without
        landmarks it falls back to the centre of the mean's bounding box (``head_centre_source`` says
        which), and the frame's origin is then only approximately the conventional head centre.

        If ``fix_winding``, triangles are flipped when the area-weighted normal of the face-area
        triangles (``triangle_region == 0``) points into the head (+z), so the result is always
        counter-clockwise seen from outside (the Basel Face Model 2009, for one, is stored clockwise).

        Args:
            mean: ``(V, 3)`` mean shape, file units and axes.
            identity_basis: ``(V, 3, Ki)``; ``expression_basis``: ``(V, 3, Ke)`` or ``None`` (Ke = 0).
            triangles: ``(T, 3)`` 0-based vertex indices. ``triangle_region``: ``(T,)`` or ``None`` (all face).
            unit_to_mm: length of the file's unit in mm.
            landmarks68: ``(68,)`` vertex indices in iBUG order, or ``None``.
            metadata: further keyword arguments of :class:`MorphableModel` (name, format, source, ...).
        """
        mean = np.asarray(mean, dtype=np.float64)
        V = mean.shape[0]
        scale = float(unit_to_mm)
        mean_axes = (mean * scale) @ MODEL_TO_HEAD_AXES.T
        if landmarks68 is not None:
            landmarks68 = np.asarray(landmarks68, dtype=np.int64)
            eyes = mean_axes[landmarks68[list(EYE_CORNER_LANDMARKS)]].mean(axis=0)
            centre = eyes + np.array([0.0, 0.0, HEAD_CENTRE_BEHIND_EYES_MM])
            centre_source = "eye corners"
        else:
            centre = 0.5 * (mean_axes.min(axis=0) + mean_axes.max(axis=0))
            centre_source = "bounding-box centre of the mean shape (no landmarks)"
        signs = (_AXIS_SIGNS * scale).astype(np.float32)[None, :, None]
        ib = np.asarray(identity_basis, dtype=np.float32) * signs
        eb = (np.zeros((V, 3, 0), np.float32) if expression_basis is None
              else np.asarray(expression_basis, dtype=np.float32) * signs)
        tris = np.asarray(triangles, dtype=np.int64)
        region = (np.zeros(len(tris), np.uint8) if triangle_region is None
                  else np.asarray(triangle_region, dtype=np.uint8))
        mean_head = mean_axes - centre
        if fix_winding and len(tris):
            a, b, c = (mean_head[tris[:, i]] for i in range(3))
            normals = np.cross(b - a, c - a)
            front = region == 0 if (region == 0).any() else np.ones(len(tris), bool)
            if normals[front, 2].sum() > 0:  # outward normals of a face point toward head -z
                tris = tris[:, [0, 2, 1]]
        metadata.setdefault("head_centre_source", centre_source)
        return cls(
            mean=torch.tensor(mean_head, dtype=torch.float32),
            identity_basis=torch.tensor(ib),
            expression_basis=torch.tensor(eb),
            triangles=torch.tensor(tris),
            triangle_region=torch.tensor(region),
            landmarks68=None if landmarks68 is None else torch.tensor(landmarks68),
            head_centre_model=(centre @ MODEL_TO_HEAD_AXES) / scale,  # R^T c / s, R = R^T
            unit_to_mm=scale,
            **metadata,
        )

    def _kwargs(self) -> dict[str, Any]:
        return dict(
            mean=self.mean, identity_basis=self.identity_basis, expression_basis=self.expression_basis,
            triangles=self.triangles, triangle_region=self.triangle_region, face_area=self.face_area,
            narrow_face=self.narrow_face, landmarks68=self._landmarks68, rigid_landmarks9=self._rigid_landmarks9,
            identity_names=self.identity_names, expression_names=self.expression_names,
            expression_kind=self.expression_kind, name=self.name, head_centre_model=self.head_centre_model,
            head_centre_source=self.head_centre_source, unit_to_mm=self.unit_to_mm,
            source_units=self.source_units, format=self.format, source=self.source, sha256=self.sha256,
            licence_path=self.licence_path,
        )

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "MorphableModel":
        """A copy with every tensor on ``device`` and the float tensors in ``dtype``."""
        kwargs = self._kwargs()
        for key, value in kwargs.items():
            if isinstance(value, Tensor):
                kwargs[key] = value.to(device=device, dtype=dtype if value.is_floating_point() else None)
        return MorphableModel(**kwargs)

    def __repr__(self) -> str:
        return (f"MorphableModel(name={self.name!r}, format={self.format!r}, V={self.num_vertices}, "
                f"T={self.triangles.shape[0]}, Ki={self.identity_dim}, Ke={self.expression_dim} "
                f"({self.expression_kind}), face_area={self.face_area.numel()}, landmarks={self.has_landmarks}, "
                f"device={self.device})")

    # ------------------------------------------------------------------ properties

    @property
    def num_vertices(self) -> int:
        """V, the number of vertices."""
        return self.mean.shape[0]

    @property
    def identity_dim(self) -> int:
        """Ki, the number of identity coefficients."""
        return self.identity_basis.shape[2]

    @property
    def expression_dim(self) -> int:
        """Ke, the number of expression coefficients (may be 0)."""
        return self.expression_basis.shape[2]

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mean.dtype

    @property
    def regressed_vertices(self) -> Tensor:
        """``(Vr,)`` the vertices whose shape is regressed and evaluated: :attr:`face_area`."""
        return self.face_area

    @property
    def regressed_dim(self) -> int:
        """``3 * Vr``: the length of a flattened displacement vector over :attr:`regressed_vertices`."""
        return 3 * self.face_area.numel()

    @property
    def has_landmarks(self) -> bool:
        """Whether the model knows its 68 landmark vertices."""
        return self._landmarks68 is not None

    def _missing_landmarks(self) -> DepthfaceError:
        return DepthfaceError(
            f"face model {self.name!r} has no 68-landmark vertex list; pass one to load_face_model(..., "
            "landmarks=<.txt or .npy of 68 0-based vertex indices>)",
            self.source,
        )

    @property
    def landmarks68(self) -> Tensor:
        """``(68,)`` int64 vertex index of each iBUG-68 landmark. Raises DepthfaceError if unknown."""
        if self._landmarks68 is None:
            raise self._missing_landmarks()
        return self._landmarks68

    @property
    def rigid_landmarks9(self) -> Tensor:
        """``(9,)`` int64 vertices of the rigid landmarks :data:`RIGID_LANDMARK_IDS`. Raises if unknown."""
        if self._rigid_landmarks9 is None:
            raise self._missing_landmarks()
        return self._rigid_landmarks9

    def region_indices(self, region: str | Tensor | Sequence[int] | None = None) -> Tensor:
        """Vertex indices of a region: ``None``/``"face"`` (face area), ``"narrow"``, ``"all"``, or indices."""
        if region is None or (isinstance(region, str) and region == "face"):
            return self.face_area
        if isinstance(region, str):
            if region == "narrow":
                return self.narrow_face
            if region == "all":
                return torch.arange(self.num_vertices, device=self.device)
            raise ValueError(f"unknown region {region!r}; use 'face', 'narrow', 'all' or vertex indices")
        return _index_tensor(region).to(self.device)

    # ------------------------------------------------------------------ evaluation

    def _coefficients(self, coeffs: Tensor | None, dim: int, label: str) -> Tensor | None:
        if coeffs is None:
            return None
        coeffs = torch.as_tensor(coeffs).to(device=self.device, dtype=self.dtype)
        if coeffs.ndim != 2 or coeffs.shape[1] != dim:
            raise ValueError(f"{label} coefficients must be (B, {dim}), got {tuple(coeffs.shape)}")
        return coeffs

    def _offsets(self, identity: Tensor | None, expression: Tensor | None) -> Tensor | None:
        """``(B, V, 3)`` sum of the basis contributions, or None when both are None."""
        identity = self._coefficients(identity, self.identity_dim, "identity")
        expression = self._coefficients(expression, self.expression_dim, "expression")
        V = self.num_vertices
        out = None
        for coeffs, basis in ((identity, self.identity_basis), (expression, self.expression_basis)):
            if coeffs is None:
                continue
            term = coeffs @ basis.reshape(3 * V, basis.shape[2]).T  # (B, 3V)
            out = term if out is None else out + term
        return None if out is None else out.reshape(-1, V, 3)

    def vertices(self, identity: Tensor | None = None, expression: Tensor | None = None) -> Tensor:
        """Vertices of faces, mm, head frame.

        Args:
            identity: ``(B, Ki)`` identity coefficients (N(0, 1) scale), or ``None`` for zeros.
            expression: ``(B, Ke)`` expression coefficients (``(B, 0)`` for a model without), or ``None``.

        Returns:
            ``(B, V, 3)``; ``(1, V, 3)`` (the mean) when both are ``None``.
        """
        offsets = self._offsets(identity, expression)
        return self.mean[None].clone() if offsets is None else self.mean[None] + offsets

    def displacements(
        self,
        identity: Tensor | None = None,
        expression: Tensor | None = None,
        region: str | Tensor | Sequence[int] | None = None,
    ) -> Tensor:
        """Offsets from the mean shape, ``vertices(...) - mean``, on a region.

        Args:
            identity: ``(B, Ki)`` or ``None``. expression: ``(B, Ke)`` or ``None``.
            region: see :meth:`region_indices`; default the face area (:attr:`regressed_vertices`).

        Returns:
            ``(B, Vr, 3)`` mm, head-frame axes.
        """
        index = self.region_indices(region)
        offsets = self._offsets(identity, expression)
        if offsets is None:
            return self.mean.new_zeros(1, index.numel(), 3)
        return offsets[:, index]

    def displacement_basis(self, region: str | Tensor | Sequence[int] | None = None) -> Tensor:
        """The linear map from ``[identity; expression]`` coefficients to flattened displacements on a region:
        ``(3 Vr, Ki + Ke)``, rows ordered ``(v0.x, v0.y, v0.z, v1.x, ...)``, so that
        ``(basis @ c).reshape(Vr, 3) == displacements(c[:Ki], c[Ki:])``."""
        index = self.region_indices(region)
        parts = [self.identity_basis[index]]
        if self.expression_dim:
            parts.append(self.expression_basis[index])
        basis = torch.cat(parts, dim=2)  # (Vr, 3, K)
        return basis.reshape(3 * index.numel(), basis.shape[2])

    def landmarks(self, vertices: Tensor) -> Tensor:
        """The 68 landmarks of faces: ``(..., V, 3) -> (..., 68, 3)``. Raises DepthfaceError if unknown."""
        return vertices[..., self.landmarks68.to(vertices.device), :]

    @staticmethod
    def pose(vertices: Tensor, R: Tensor, t: Tensor) -> Tensor:
        """Head-frame points to the camera frame: ``p_cam = R p_head + t``.

        Args:
            vertices: ``(B, V, 3)`` head frame, mm. R: ``(B, 3, 3)``. t: ``(B, 3)`` mm.

        Returns:
            ``(B, V, 3)`` camera frame, mm.
        """
        return vertices @ R.transpose(-1, -2) + t.unsqueeze(-2)

    # ------------------------------------------------------------------ sampling

    def sample_identity(self, n: int, generator: torch.Generator | int, scale: float = 1.0) -> Tensor:
        """``(n, Ki)`` identity coefficients drawn from ``N(0, scale^2)`` (seeded, reproducible).

        ``generator``: a ``torch.Generator`` (advanced by the call) or an int seed.
        """
        g = _as_generator(generator)
        z = torch.randn(n, self.identity_dim, generator=g, device=g.device)
        return (z * scale).to(device=self.device, dtype=self.dtype)

    def sample_expression(
        self, n: int, generator: torch.Generator | int, num_active: int = 3, scale: float = 1.0
    ) -> Tensor:
        """``(n, Ke)`` random expression coefficients (seeded, reproducible).

        Blendshape models: ``num_active`` distinct blendshapes per sample, chosen uniformly, each with a
        weight ``U(0, scale)``, all others 0 (so weights lie in ``[0, scale]``, ``0 <= scale <= 1``).
        PCA expression models: ``N(0, scale^2)`` (``num_active`` is ignored). No expression basis:
        ``(n, 0)``.
        """
        g = _as_generator(generator)
        Ke = self.expression_dim
        if self.expression_kind == "pca":
            z = torch.randn(n, Ke, generator=g, device=g.device) * scale
            return z.to(device=self.device, dtype=self.dtype)
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"blendshape weights lie in [0, 1]: scale must be in [0, 1], got {scale}")
        out = torch.zeros(n, Ke, device=g.device)
        k = max(0, min(int(num_active), Ke))
        if k and n:
            chosen = torch.rand(n, Ke, generator=g, device=g.device).argsort(dim=1)[:, :k]
            weights = torch.rand(n, k, generator=g, device=g.device) * scale
            out.scatter_(1, chosen, weights)
        return out.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ export

    def export_mesh(self, vertices: Tensor | np.ndarray, path: str | Path, copy_licence: bool = False) -> Path:
        """Write one face as a mesh (``.ply`` or ``.obj``, by suffix) with the model's triangles.

        Vertex order is kept, so vertex ``i`` of the file is vertex ``i`` of the model. Coordinates are
        written as given (mm; head or camera frame, as passed): binary little-endian PLY with float32
        vertices and int32 triangles, or text OBJ with 6 decimals, both formatted by NumPy in one call
        (no loop over vertices; about a millisecond per face).

        Args:
            vertices: ``(V, 3)`` or ``(1, V, 3)`` tensor or array.
            path: output file; parent folders are created.
            copy_licence: also copy :attr:`licence_path` (if known) next to the output.

        Returns:
            ``path``.
        """
        path = Path(path)
        if isinstance(vertices, Tensor):
            vertices = vertices.detach().cpu().numpy()
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim == 3 and v.shape[0] == 1:
            v = v[0]
        if v.shape != (self.num_vertices, 3):
            raise ValueError(f"vertices must be ({self.num_vertices}, 3), got {v.shape}")
        suffix = path.suffix.lower()
        if suffix not in (".ply", ".obj"):
            raise DepthfaceError(f"cannot export a mesh as {suffix or 'a file without suffix'!r}; use .ply or .obj",
                                 path)
        tri = self.triangles.cpu().numpy()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if suffix == ".obj":
                text = ("v %.6f %.6f %.6f\n" * len(v)) % tuple(v.ravel()) + ("f %d %d %d\n" * len(tri)) % tuple(
                    (tri + 1).ravel().tolist())
                path.write_text(text)
            else:
                faces = np.empty(len(tri), dtype=[("n", "u1"), ("i", "<i4", (3,))])
                faces["n"] = 3
                faces["i"] = tri
                header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(v)}\nproperty float x\n"
                          f"property float y\nproperty float z\nelement face {len(tri)}\n"
                          "property list uchar int vertex_indices\nend_header\n")
                with path.open("wb") as f:
                    f.write(header.encode("ascii"))
                    f.write(v.astype("<f4").tobytes())
                    f.write(faces.tobytes())
            if copy_licence and self.licence_path is not None:
                target = path.parent / self.licence_path.name
                if not target.exists():
                    shutil.copyfile(self.licence_path, target)
        except OSError as exc:
            raise DepthfaceError(f"cannot write the mesh ({exc.strerror or exc})", path) from None
        return path
