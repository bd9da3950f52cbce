"""Tests of depthface.facemodel: the default ICT model in the head frame, the loaders and their errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
import trimesh

from depthface.errors import DepthfaceError
from depthface.facemodel import ENV_VAR, MorphableModel, load_face_model, resolve_face_model_path
from depthface.facemodel import loaders
from depthface.geometry.conventions import EYE_CORNER_LANDMARKS, HEAD_CENTRE_BEHIND_EYES_MM


def _one_line_error(excinfo: pytest.ExceptionInfo, name: str) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    assert name in text
    assert "Traceback" not in text
    return text


# ---------------------------------------------------------------------------------------------- default model


def test_default_model_sizes(model: MorphableModel) -> None:
    assert model.num_vertices == 11248
    assert model.mean.shape == (11248, 3) and model.mean.dtype == torch.float32
    assert model.face_area.numel() == 9409 and torch.equal(model.regressed_vertices, model.face_area)
    assert model.regressed_dim == 3 * 9409
    assert model.narrow_face.numel() == 6706
    assert model.identity_basis.shape == (11248, 3, 100) and model.identity_dim == 100
    assert model.expression_basis.shape == (11248, 3, 53) and model.expression_dim == 53
    assert model.expression_names[26] == "jawOpen" and model.expression_kind == "blendshapes"
    assert model.triangles.shape == (22288, 3) and model.triangles.dtype == torch.int64
    assert model.triangle_region.shape == (22288,)
    assert model.landmarks68.shape == (68,) and model.rigid_landmarks9.shape == (9,)
    assert model.sha256 == "1c5f99dd1526c049978ed862d653aea5142e671d583a2800947e2c4660b340ee"
    assert model.licence_path is not None and model.licence_path.name == "ict_facekit_LICENSE.txt"
    assert model.unit_to_mm == 10.0 and model.format == "ict-npz"


def test_head_frame_axes(model: MorphableModel) -> None:
    lm = model.landmarks(model.mean[None])[0]
    eyes = lm[list(EYE_CORNER_LANDMARKS)]
    assert lm[30, 2] < eyes[:, 2].min()  # nose tip nearer the camera (smaller head z) than the eyes
    assert lm[45, 0] > 0 and lm[36, 0] < 0  # x toward the subject's left
    assert lm[8, 1] > eyes[:, 1].max()  # y down: the chin below the eyes
    # head centre = eye-corner centroid moved 90 mm into the skull = the origin
    centre = eyes.mean(0) + torch.tensor([0.0, 0.0, HEAD_CENTRE_BEHIND_EYES_MM])
    assert torch.allclose(centre, torch.zeros(3), atol=1e-3)
    # and the documented model-frame centre maps back onto it
    hc = model.head_centre_model
    assert model.head_centre_source == "eye corners"
    nose_model = np.array([0.0, 0.405942, 13.0691])  # README: nose tip near (0, 0.4, 13.1) cm
    nose_head = np.diag([1.0, -1.0, -1.0]) @ (nose_model * 10.0) - np.diag([1.0, -1.0, -1.0]) @ (hc * 10.0)
    assert np.allclose(nose_head, lm[30].numpy(), atol=1e-3)


def test_face_size_is_plausible_in_mm(model: MorphableModel) -> None:
    lm = model.landmarks(model.mean[None])[0]
    outer_eye_distance = (lm[45] - lm[36]).norm().item()
    assert 80.0 < outer_eye_distance < 110.0  # mm


def test_winding_outward_normals_point_to_camera(model: MorphableModel) -> None:
    v, tri = model.mean, model.triangles
    normals = torch.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]], dim=1)
    nose = model.landmarks68[30]
    around_nose = (tri == nose).any(dim=1)
    n = normals[around_nose].sum(0)
    assert n[2] < 0 and -n[2] > 0.8 * n.norm()  # toward head -z (the camera at identity pose)
    face = model.triangle_region == 0
    assert normals[face].sum(0)[2] < 0


def test_landmarks_are_vertices(model: MorphableModel) -> None:
    lm = model.landmarks68
    assert lm.min() >= 0 and lm.max() < model.num_vertices
    assert torch.isin(lm, model.face_area).all()
    verts = model.vertices(model.sample_identity(2, 0), model.sample_expression(2, 1))
    assert torch.equal(model.landmarks(verts), verts[:, lm])
    assert torch.equal(model.rigid_landmarks9, lm[[0, 36, 39, 42, 45, 16, 28, 31, 35]])


def test_zero_coefficients_give_mean(model: MorphableModel) -> None:
    verts = model.vertices(torch.zeros(3, 100), torch.zeros(3, 53))
    assert verts.shape == (3, 11248, 3)
    assert torch.equal(verts, model.mean.expand(3, -1, -1))
    assert torch.equal(model.vertices()[0], model.mean)


def test_linearity(model: MorphableModel) -> None:
    g = torch.Generator().manual_seed(3)
    a1, a2 = torch.randn(2, 100, generator=g), torch.randn(2, 100, generator=g)
    e1, e2 = torch.rand(2, 53, generator=g), torch.rand(2, 53, generator=g)
    off = lambda a, e: model.vertices(a, e) - model.mean  # noqa: E731
    assert torch.allclose(off(a1 + a2, e1 + e2), off(a1, e1) + off(a2, e2), atol=1e-3)
    assert torch.allclose(off(2.5 * a1, 2.5 * e1), 2.5 * off(a1, e1), atol=1e-3)
    expected = model.mean + torch.einsum("vck,k->vc", model.identity_basis, a1[0]) + torch.einsum(
        "vck,k->vc", model.expression_basis, e1[0])
    assert torch.allclose(model.vertices(a1, e1)[0], expected, atol=1e-3)
    # identity coefficients are N(0, 1): a 1-sigma mode moves vertices by millimetres, not metres
    assert 0.5 < off(torch.eye(100)[:1], None).abs().max().item() < 50.0


def test_displacements(model: MorphableModel) -> None:
    a, e = model.sample_identity(2, 5), model.sample_expression(2, 6)
    d = model.displacements(a, e)
    assert d.shape == (2, 9409, 3)
    full = model.vertices(a, e) - model.mean
    assert torch.allclose(d, full[:, model.face_area], atol=1e-4)
    assert model.displacements(a, e, region="narrow").shape == (2, 6706, 3)
    assert model.displacements(a, e, region="all").shape == (2, 11248, 3)
    assert torch.allclose(model.displacements(a, e, region=[0, 5]), full[:, [0, 5]], atol=1e-4)


def test_seeded_sampling(model: MorphableModel) -> None:
    assert torch.equal(model.sample_identity(4, 7), model.sample_identity(4, 7))
    assert not torch.equal(model.sample_identity(4, 7), model.sample_identity(4, 8))
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    assert torch.equal(model.sample_expression(4, g1), model.sample_expression(4, g2))
    ident = model.sample_identity(2000, 1)
    assert ident.shape == (2000, 100)
    assert abs(ident.mean().item()) < 0.01 and abs(ident.std().item() - 1.0) < 0.01
    assert torch.allclose(model.sample_identity(3, 2, scale=0.5), 0.5 * model.sample_identity(3, 2))
    expr = model.sample_expression(50, 3, num_active=4)
    assert expr.shape == (50, 53)
    assert expr.min() >= 0 and expr.max() <= 1
    assert ((expr > 0).sum(dim=1) == 4).all()


def test_pose(model: MorphableModel) -> None:
    angle = math.radians(30)
    R = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    t = torch.tensor([10.0, -20.0, 800.0])
    verts = model.vertices()
    cam = model.pose(verts, R[None], t[None])
    assert torch.allclose(cam[0], verts[0] @ R.T + t, atol=1e-4)
    # the head centre (origin) goes to t
    assert torch.allclose(model.pose(torch.zeros(1, 1, 3), R[None], t[None])[0, 0], t)


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_export_mesh_roundtrip(model: MorphableModel, tmp_path: Path, suffix: str) -> None:
    verts = model.vertices(model.sample_identity(1, 4), model.sample_expression(1, 4))[0]
    out = model.export_mesh(verts, tmp_path / "sub" / f"face{suffix}", copy_licence=True)
    mesh = trimesh.load(out, process=False, force="mesh")
    assert np.allclose(mesh.vertices, verts.numpy(), atol=1e-4)
    assert np.array_equal(mesh.faces, model.triangles.numpy())
    assert (tmp_path / "sub" / "ict_facekit_LICENSE.txt").is_file()


def test_to_device_and_dtype(model: MorphableModel) -> None:
    m64 = model.to("cpu", torch.float64)
    assert m64.mean.dtype == torch.float64 and m64.triangles.dtype == torch.int64
    assert m64.vertices(torch.zeros(1, 100), torch.zeros(1, 53)).dtype == torch.float64
    assert m64.sha256 == model.sha256


# ---------------------------------------------------------------------------------------------- search order


def _write_ict_npz(path: Path, face: dict, drop: str | None = None) -> Path:
    arrays = {
        "units": np.array("cm"),
        "mean": face["mean"].astype(np.float32),
        "triangles": face["triangles"].astype(np.int32),
        "triangle_region": np.zeros(len(face["triangles"]), np.uint8),
        "identity_basis": face["identity_basis"].astype(np.float32),
        "expression_basis": face["expression_basis"].astype(np.float32),
        "expression_names": np.array(face["expression_names"]),
        "landmarks68": face["landmarks68"].astype(np.int32),
        "face_area_vertices": np.arange(len(face["mean"]), dtype=np.int32),
    }
    if drop is not None:
        del arrays[drop]
    np.savez(path, **arrays)
    return path


def test_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_face: dict) -> None:
    tiny = _write_ict_npz(tmp_path / "tiny.npz", tiny_face)
    monkeypatch.delenv(ENV_VAR, raising=False)
    default = resolve_face_model_path()
    assert default.name == "ict_facekit_head.npz" and default == loaders.PACKAGED_MODEL
    assert default.is_relative_to(Path(loaders.__file__).parent), "the default ships inside the package"
    assert (default.parent / "ict_facekit_LICENSE.txt").is_file(), "its licence travels with it"
    assert default == loaders.default_model_candidates()[0]
    monkeypatch.setenv(ENV_VAR, str(tiny))
    assert resolve_face_model_path() == tiny
    assert load_face_model().name == "tiny"
    assert load_face_model(default).name == "ict_facekit_head"  # an explicit path wins
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.npz"))
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model()
    assert ENV_VAR in _one_line_error(excinfo, "missing.npz")
    monkeypatch.setenv(ENV_VAR, "")
    assert resolve_face_model_path() == default


# ---------------------------------------------------------------------------------------------- tiny models


@pytest.fixture(scope="module")
def tiny_face() -> dict:
    """A small synthetic face in the ICT model frame (cm, y up, face toward +z, x to the subject's left)."""
    xs, ys = np.linspace(-8, 8, 9), np.linspace(-10, 8, 10)
    X, Y = np.meshgrid(xs, ys, indexing="ij")  # vertex (i, j) = i * 10 + j
    Z = 8 + 5 * np.exp(-(X**2 + Y**2) / 6.0)
    mean = np.stack([X, Y, Z], -1).reshape(-1, 3)
    idx = lambda i, j: i * len(ys) + j  # noqa: E731
    quads = [(idx(i, j), idx(i + 1, j), idx(i + 1, j + 1), idx(i, j + 1))
             for i in range(len(xs) - 1) for j in range(len(ys) - 1)]  # counter-clockwise seen from +z
    triangles = np.array([t for q in quads for t in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))])
    nose = idx(4, 5)  # (0, 0)
    landmarks = np.full(68, nose)
    landmarks[[36, 39, 42, 45]] = [idx(1, 7), idx(3, 7), idx(5, 7), idx(7, 7)]  # x = -6, -2, 2, 6; y = 4
    landmarks[8] = idx(4, 0)  # chin (0, -10)
    rng = np.random.default_rng(0)
    V = len(mean)
    return {
        "mean": mean, "quads": quads, "triangles": triangles, "landmarks68": landmarks,
        "identity_basis": rng.normal(0, 0.3, (V, 3, 2)), "expression_basis": rng.normal(0, 0.2, (V, 3, 2)),
        "expression_names": ["jawOpen", "mouthSmile_L"],
    }


def _expected_head(mean_model: np.ndarray, unit_to_mm: float, landmarks: np.ndarray) -> np.ndarray:
    p = mean_model * unit_to_mm * np.array([1.0, -1.0, -1.0])
    centre = p[landmarks[[36, 39, 42, 45]]].mean(0) + np.array([0, 0, 90.0])
    return p - centre


def _check_outward(m: MorphableModel) -> None:
    v, tri = m.mean, m.triangles
    normals = torch.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]], dim=1)
    assert normals.sum(0)[2] < 0


def test_tiny_ict_npz(tmp_path: Path, tiny_face: dict) -> None:
    m = load_face_model(_write_ict_npz(tmp_path / "tiny.npz", tiny_face))
    assert np.allclose(m.mean.numpy(), _expected_head(tiny_face["mean"], 10.0, tiny_face["landmarks68"]), atol=1e-3)
    signs = np.array([1.0, -1.0, -1.0])[None, :, None]
    assert np.allclose(m.identity_basis.numpy(), tiny_face["identity_basis"] * 10 * signs, atol=1e-4)
    assert m.licence_path is None
    _check_outward(m)


def test_bfm2009_mat(tmp_path: Path, tiny_face: dict) -> None:
    V, K = len(tiny_face["mean"]), 3
    rng = np.random.default_rng(1)
    pc, _ = np.linalg.qr(rng.normal(size=(3 * V, K)))  # orthonormal columns, like BFM's
    ev = np.array([[30000.0], [20000.0], [10000.0]])  # standard deviations, micrometres
    mu_um = tiny_face["mean"] * 1e4  # cm -> micrometres
    tl = tiny_face["triangles"][:, [0, 2, 1]] + 1  # BFM2009 stores clockwise, 1-based
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, {"shapeMU": mu_um.reshape(-1, 1).astype(np.float32), "shapePC": pc.astype(np.float32),
                            "shapeEV": ev.astype(np.float32), "tl": tl.astype(np.float64)})
    lm_file = tmp_path / "bfm_landmarks.txt"
    lm_file.write_text("# 68 0-based vertex indices\n" + "\n".join(str(i) for i in tiny_face["landmarks68"]))
    m = load_face_model(path, landmarks=lm_file)
    assert m.format == "bfm2009" and m.unit_to_mm == 1e-3 and m.expression_dim == 0
    expected = _expected_head(tiny_face["mean"], 10.0, tiny_face["landmarks68"])  # mm
    assert np.allclose(m.mean.numpy(), expected, atol=1e-2)
    alpha = torch.tensor([[1.0, -2.0, 0.5]])
    basis_mm = (pc * ev.T).reshape(V, 3, K) * 1e-3 * np.array([1.0, -1.0, -1.0])[None, :, None]
    got = m.vertices(alpha, torch.zeros(1, 0))[0].numpy()
    assert np.allclose(got, expected + basis_mm @ alpha[0].numpy(), atol=1e-2)
    assert np.array_equal(np.sort(m.triangles.numpy(), 1), np.sort(tiny_face["triangles"], 1))
    _check_outward(m)  # the clockwise file was flipped
    assert m.face_area.numel() == V
    assert m.sample_expression(2, 0).shape == (2, 0)
    assert m.vertices(alpha, m.sample_expression(1, 0)).shape == (1, V, 3)


def test_bfm2009_without_landmarks(tmp_path: Path, tiny_face: dict) -> None:
    V = len(tiny_face["mean"])
    path = tmp_path / "bfm.mat"
    scipy.io.savemat(path, {"shapeMU": (tiny_face["mean"] * 1e4).reshape(-1, 1), "shapePC": np.eye(3 * V, 2),
                            "shapeEV": np.ones((2, 1)), "tl": tiny_face["triangles"] + 1})
    m = load_face_model(path, face_area=np.arange(10))
    assert not m.has_landmarks and "no landmarks" in m.head_centre_source
    assert m.face_area.numel() == 10 and m.displacements(torch.zeros(1, 2)).shape == (1, 10, 3)
    with pytest.raises(DepthfaceError) as excinfo:
        m.landmarks(m.vertices())
    assert "landmarks" in _one_line_error(excinfo, "bfm.mat")
    # landmarks that contradict the axes (e.g. 1-based) are refused
    with pytest.raises(DepthfaceError) as excinfo:
        swapped = tiny_face["landmarks68"].copy()
        swapped[[36, 45]] = swapped[[45, 36]]  # eyes mirrored: x would point to the subject's right
        load_face_model(path, landmarks=swapped)
    _one_line_error(excinfo, "bfm.mat")


def test_bfm2017_h5(tmp_path: Path, tiny_face: dict) -> None:
    V = len(tiny_face["mean"])
    rng = np.random.default_rng(2)
    basis, _ = np.linalg.qr(rng.normal(size=(3 * V, 4)))
    var = np.array([400.0, 100.0, 25.0, 4.0])  # mm^2
    e_basis, _ = np.linalg.qr(rng.normal(size=(3 * V, 2)))
    e_var = np.array([9.0, 1.0])
    e_mean = rng.normal(0, 0.5, 3 * V)
    mean_mm = tiny_face["mean"] * 10.0
    path = tmp_path / "model2017-1_face12_nomouth.h5"
    with h5py.File(path, "w") as f:
        f["shape/model/mean"] = mean_mm.reshape(-1).astype(np.float32)
        f["shape/model/pcaBasis"] = basis.astype(np.float32)
        f["shape/model/pcaVariance"] = var.astype(np.float32)
        f["shape/representer/cells"] = tiny_face["triangles"].T.astype(np.uint32)  # (3, T)
        f["shape/representer/points"] = mean_mm.T.astype(np.float32)
        f["expression/model/mean"] = e_mean.astype(np.float32)
        f["expression/model/pcaBasis"] = e_basis.astype(np.float32)
        f["expression/model/pcaVariance"] = e_var.astype(np.float32)
    lm_npy = tmp_path / "lm.npy"
    np.save(lm_npy, tiny_face["landmarks68"])
    m = load_face_model(path, landmarks=lm_npy)
    assert m.format == "bfm2017" and m.unit_to_mm == 1.0 and m.expression_kind == "pca"
    full_mean = mean_mm.reshape(V, 3) + e_mean.reshape(V, 3)
    expected = _expected_head(full_mean, 1.0, tiny_face["landmarks68"])
    assert np.allclose(m.mean.numpy(), expected, atol=1e-3)
    signs = np.array([1.0, -1.0, -1.0])[None, :, None]
    assert np.allclose(m.identity_basis.numpy(), (basis * np.sqrt(var)).reshape(V, 3, 4) * signs, atol=1e-4)
    assert np.allclose(m.expression_basis.numpy(), (e_basis * np.sqrt(e_var)).reshape(V, 3, 2) * signs, atol=1e-4)
    assert np.array_equal(m.triangles.numpy(), tiny_face["triangles"])
    _check_outward(m)
    expr = m.sample_expression(1000, 0)
    assert expr.shape == (1000, 2) and expr.min() < 0 and abs(expr.std().item() - 1) < 0.1  # PCA: N(0, 1)


def _obj_text(vertices: np.ndarray, quads: list | None = None) -> str:
    lines = ["# test mesh", "mtllib none.mtl"] + [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += ["vt 0.5 0.5" for _ in range(2)]
    if quads is not None:
        lines += ["f " + " ".join(f"{i + 1}/1" for i in q) for q in quads]
    return "\n".join(lines) + "\n"


def test_raw_ict_folder(tmp_path: Path, tiny_face: dict) -> None:
    root = tmp_path / "ICT-FaceKit"
    folder = root / "FaceXModel"
    folder.mkdir(parents=True)
    mean = tiny_face["mean"]
    (folder / "generic_neutral_mesh.obj").write_text(_obj_text(mean, tiny_face["quads"]))
    for k in range(2):
        (folder / f"identity{k:03d}.obj").write_text(_obj_text(mean + tiny_face["identity_basis"][:, :, k]))
    for k, name in enumerate(tiny_face["expression_names"]):
        (folder / f"{name}.obj").write_text(_obj_text(mean + tiny_face["expression_basis"][:, :, k]))
    (folder / "vertex_indices.json").write_text(json.dumps({
        "expressions": tiny_face["expression_names"],
        "idx_to_landmark_verts": tiny_face["landmarks68"].tolist(),
        "idx_to_rigid_landmark_idx": [0, 36, 39, 42, 45, 16, 28, 31, 35],
    }))
    (root / "LICENSE").write_text("MIT")
    m = load_face_model(root)  # the repository root holding FaceXModel/
    assert m.format == "ict-folder" and m.identity_dim == 2 and m.expression_dim == 2
    assert m.expression_names == ("jawOpen", "mouthSmile_L") and m.licence_path == root / "LICENSE"
    assert np.array_equal(m.triangles.numpy(), tiny_face["triangles"])  # quads split (0,1,2), (0,2,3)
    assert np.allclose(m.mean.numpy(), _expected_head(mean, 10.0, tiny_face["landmarks68"]), atol=1e-3)
    signs = np.array([1.0, -1.0, -1.0])[None, :, None]
    assert np.allclose(m.identity_basis.numpy(), tiny_face["identity_basis"] * 10 * signs, atol=1e-3)
    assert np.allclose(m.expression_basis.numpy(), tiny_face["expression_basis"] * 10 * signs, atol=1e-3)
    assert torch.equal(m.landmarks68, torch.as_tensor(tiny_face["landmarks68"]))
    assert len(m.sha256) == 64
    assert load_face_model(folder / "generic_neutral_mesh.obj").sha256 == m.sha256


# ---------------------------------------------------------------------------------------------- bad inputs


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(tmp_path / "no_such_model.npz")
    text = _one_line_error(excinfo, "no_such_model.npz")
    assert ENV_VAR in text


def test_truncated_npz(tmp_path: Path) -> None:
    data = resolve_face_model_path().read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(bad)
    assert "corrupt or truncated" in _one_line_error(excinfo, "truncated.npz")


def test_npz_missing_key(tmp_path: Path, tiny_face: dict) -> None:
    path = _write_ict_npz(tmp_path / "nomean.npz", tiny_face, drop="mean")
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(path)
    assert "mean" in _one_line_error(excinfo, "nomean.npz")


def test_npz_wrong_shape(tmp_path: Path, tiny_face: dict) -> None:
    face = dict(tiny_face, identity_basis=tiny_face["identity_basis"][:-1])
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(_write_ict_npz(tmp_path / "badshape.npz", face))
    assert "identity_basis" in _one_line_error(excinfo, "badshape.npz")


def test_mat_wrong_shapes(tmp_path: Path, tiny_face: dict) -> None:
    V = len(tiny_face["mean"])
    path = tmp_path / "wrong.mat"
    scipy.io.savemat(path, {"shapeMU": np.zeros((3 * V, 1)), "shapePC": np.zeros((3 * V - 3, 4)),
                            "shapeEV": np.ones((4, 1)), "tl": tiny_face["triangles"] + 1})
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(path)
    assert "shapePC" in _one_line_error(excinfo, "wrong.mat")
    path2 = tmp_path / "nokeys.mat"
    scipy.io.savemat(path2, {"something": np.zeros(3)})
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(path2)
    _one_line_error(excinfo, "nokeys.mat")


def test_garbage_files(tmp_path: Path) -> None:
    for name in ("garbage.mat", "garbage.h5", "garbage.npz"):
        path = tmp_path / name
        path.write_bytes(b"this is not a face model" * 10)
        with pytest.raises(DepthfaceError) as excinfo:
            load_face_model(path)
        _one_line_error(excinfo, name)
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(tmp_path / "empty.h5")
    assert "shape/model/mean" in _one_line_error(excinfo, "empty.h5")
    (tmp_path / "model.ply").write_text("ply")
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(tmp_path / "model.ply")
    _one_line_error(excinfo, "model.ply")


def test_folder_without_model(tmp_path: Path) -> None:
    folder = tmp_path / "empty_folder"
    folder.mkdir()
    with pytest.raises(DepthfaceError) as excinfo:
        load_face_model(folder)
    _one_line_error(excinfo, "empty_folder")


def test_raw_ict_official_topology_is_cropped(tmp_path: Path) -> None:
    """The 26,719-vertex ICT Face Model Light keeps face + head and neck, as the shared npz does."""
    rng = np.random.default_rng(3)
    V, P = 26719, 26384
    neutral = rng.normal(0, 10, (V, 3))
    polys = [np.arange(4) + (p % 11244) if p < 11144 else 11248 + np.arange(4) + (p - 11144) % 15000
             for p in range(P)]
    face_lines = "\n".join("f " + " ".join(str(i + 1) for i in q) for q in polys)

    def write(name: str, verts: np.ndarray, faces: bool = False) -> None:
        text = "\n".join(f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in verts)
        (tmp_path / name).write_text(text + ("\n" + face_lines if faces else "") + "\n")

    write("generic_neutral_mesh.obj", neutral, faces=True)
    shift = rng.normal(0, 1, (V, 3))
    write("identity000.obj", neutral + shift)
    write("jawOpen.obj", neutral)
    (tmp_path / "vertex_indices.json").write_text(json.dumps({"expressions": ["jawOpen"]}))
    m = load_face_model(tmp_path)
    assert m.num_vertices == 11248 and m.triangles.shape == (2 * 11144, 3)
    assert int((m.triangle_region == 0).sum()) == 2 * 9230
    assert m.face_area.numel() == 9409 and m.narrow_face.numel() == 6706
    assert not m.has_landmarks
    signs = np.array([1.0, -1.0, -1.0])
    assert np.allclose(m.identity_basis[:, :, 0].numpy(), shift[:11248] * 10 * signs, atol=1e-3)
    assert m.expression_basis.abs().max() < 1e-3


def test_displacement_basis_is_the_linear_map_of_displacements():
    model = load_face_model()
    g = torch.Generator().manual_seed(0)
    ident = torch.randn(2, model.identity_dim, generator=g)
    expr = torch.rand(2, model.expression_dim, generator=g)
    basis = model.displacement_basis()
    assert basis.shape == (3 * model.regressed_vertices.numel(), model.identity_dim + model.expression_dim)
    flat = torch.cat((ident, expr), 1) @ basis.T
    assert torch.allclose(flat.view(2, -1, 3), model.displacements(ident, expr), atol=1e-4)
