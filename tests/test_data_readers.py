"""Real-dataset readers and writers (depthface.data): mini datasets in the exact layouts, written with
our writers and read back; bad inputs; a seeded fuzz test of the Biwi RLE decoder; the splits."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from depthface.data import biwi, biwi_depth, facewarehouse, ict3dhp, splits
from depthface.data.biwi import (
    BIWI_SEQUENCE_TO_SUBJECT,
    BIWI_SUBJECTS,
    BiwiDataset,
    write_biwi_depth_calibration,
    write_biwi_frame,
)
from depthface.data.biwi_depth import decode_biwi_depth, encode_biwi_depth
from depthface.data.facewarehouse import FaceWarehouseDataset, land_to_pixels, write_facewarehouse_sample
from depthface.data.frames import Frame, FrameDataset, read_depth_png16, write_depth_png16
from depthface.data.ict3dhp import ICT3DHPDataset, ict_euler_to_matrix, matrix_to_ict_euler, write_ict3dhp_sequence
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics, read_biwi_calibration
from depthface.geometry.rotations import euler_to_matrix

W, H = 640, 480


def sphere_on_plane(K: Intrinsics, centre=(30.0, -20.0, 800.0), radius=90.0, plane=1100.0,
                    holes: float = 0.02, seed: int = 0) -> np.ndarray:
    """``(H, W)`` uint16 depth (mm): a sphere in front of a fronto-parallel plane, with invalid (0)
    pixels: a left band (Kinect shadow), the sphere's silhouette rim, and random holes."""
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    dx, dy = (u - K.cx) / K.fx, (v - K.cy) / K.fy
    d = np.stack([dx, dy, np.ones_like(dx)], -1)
    c = np.asarray(centre)
    b = d @ c
    a = (d * d).sum(-1)
    disc = b * b - a * (c @ c - radius ** 2)
    s = (b - np.sqrt(np.clip(disc, 0, None))) / a  # ray parameter = z of the hit
    z = np.where(disc > 0, s, plane)
    z[(disc > 0) & (disc < 0.02 * disc.max())] = 0  # rim
    z[:, :24] = 0
    rng = np.random.default_rng(seed)
    z[rng.random(z.shape) < holes] = 0
    return np.rint(z).astype(np.uint16)


def rotation(ypr) -> np.ndarray:
    return euler_to_matrix(torch.tensor(ypr, dtype=torch.float64)).numpy()


def one_line(err: pytest.ExceptionInfo, name: str) -> str:
    msg = str(err.value)
    assert "\n" not in msg and name in msg, msg
    return msg


# ------------------------------------------------------------------------------------------------ Biwi

BIWI_LAYOUT = {"01": [3, 4, 7], "11": [0, 5], "12": [2], "15": [10, 12]}  # frame numbers with gaps


@pytest.fixture(scope="module")
def biwi_root(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("biwi")
    K = Intrinsics.preset("biwi")
    truth = {}
    rng = np.random.default_rng(1)
    for s, (seq, frames) in enumerate(BIWI_LAYOUT.items()):
        seq_dir = root / "hpdb" / seq
        write_biwi_depth_calibration(seq_dir, K)
        for f in frames:
            depth = sphere_on_plane(K, centre=(rng.uniform(-50, 50), rng.uniform(-50, 50), 800.0), seed=10 * s + f)
            ypr = rng.uniform([-70, -50, -30], [70, 50, 30])
            R, t = rotation(ypr), rng.uniform([-100, -100, 700], [100, 100, 1100])
            mask = depth > 0
            write_biwi_frame(seq_dir, f, depth, R, t, mask=mask)
            truth[(seq, f)] = dict(depth=depth, R=R, t=t, ypr=ypr, mask=mask)
    return root, truth


def test_biwi_roundtrip(biwi_root):
    root, truth = biwi_root
    ds = BiwiDataset(root)
    assert isinstance(ds, FrameDataset)
    assert len(ds) == sum(map(len, BIWI_LAYOUT.values()))
    assert [(k.sequence, k.frame_index) for k in ds.keys] == [(s, f) for s, fs in BIWI_LAYOUT.items() for f in fs]
    for i, key in enumerate(ds.keys):
        fr = ds[i]
        exp = truth[(key.sequence, key.frame_index)]
        assert isinstance(fr, Frame)
        assert fr.depth.dtype == np.float32 and fr.depth.shape == (H, W)
        assert np.array_equal(fr.depth, exp["depth"].astype(np.float32))  # bit for bit
        np.testing.assert_allclose(fr.rotation, exp["R"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(fr.translation, exp["t"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(fr.ypr, exp["ypr"], atol=1e-6)
        assert fr.subject == BIWI_SEQUENCE_TO_SUBJECT[key.sequence] and fr.sequence == key.sequence
        assert fr.frame_index == key.frame_index and fr.source.name == f"frame_{key.frame_index:05d}_depth.bin"
        assert fr.intrinsics == Intrinsics.preset("biwi")
        assert fr.mask is None
        np.testing.assert_allclose(np.linalg.norm(fr.quaternion), 1.0)
    assert ds[-1].frame_index == 12
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_biwi_pose_file_layout(biwi_root):
    root, truth = biwi_root
    lines = (root / "hpdb" / "01" / "frame_00003_pose.txt").read_text().splitlines()
    assert len(lines) == 5 and lines[3] == "" and all(len(lines[i].split()) == 3 for i in (0, 1, 2, 4))
    np.testing.assert_array_equal(np.array([[float(v) for v in ln.split()] for ln in lines[:3]]), truth[("01", 3)]["R"])


def test_biwi_masks_sequences_and_hpdb_root(biwi_root):
    root, truth = biwi_root
    ds = BiwiDataset(root, sequences=["11", 15], with_masks=True)
    assert [(k.sequence, k.frame_index) for k in ds.keys] == [("11", 0), ("11", 5), ("15", 10), ("15", 12)]
    assert ds.subjects == ["M05", "M05", "F03", "F03"]
    for i, key in enumerate(ds.keys):
        fr = ds[i]
        assert fr.mask.dtype == bool and np.array_equal(fr.mask, truth[(key.sequence, key.frame_index)]["mask"])
    ds2 = BiwiDataset(root / "hpdb", sequences=["12"], with_masks=True)  # root = hpdb itself
    assert len(ds2) == 1 and ds2[0].mask is not None


def test_biwi_calibration_read(tmp_path):
    K = Intrinsics(580.5, 581.25, 318.0, 242.5, W, H)
    path = write_biwi_depth_calibration(tmp_path / "hpdb" / "02", K)
    assert read_biwi_calibration(path).intrinsics == K
    write_biwi_frame(tmp_path / "hpdb" / "02", 1, sphere_on_plane(K), rotation([0, 0, 0]), np.array([0, 0, 900.0]))
    fr = BiwiDataset(tmp_path)[0]
    assert fr.intrinsics == K and fr.subject == "F02"
    lines = path.read_text().splitlines()
    lines[0] = "575.8 zero 320"
    path.write_text("\n".join(lines) + "\n")
    ds = BiwiDataset(tmp_path)  # a bad calibration costs its sequence's frames only, when they are read
    assert ds.calibration_errors.keys() == {"02"}
    with pytest.raises(InputError) as e:
        ds[0]
    assert "not numeric" in one_line(e, "depth.cal")


def test_biwi_missing_pose_and_mask(biwi_root, tmp_path):
    root, truth = biwi_root
    seq = tmp_path / "hpdb" / "07"
    write_biwi_depth_calibration(seq)
    write_biwi_frame(seq, 1, truth[("01", 3)]["depth"], None, None)
    ds = BiwiDataset(tmp_path)
    with pytest.raises(InputError) as e:
        ds[0]
    assert "not found" in one_line(e, "frame_00001_pose.txt")
    write_biwi_frame(seq, 1, truth[("01", 3)]["depth"], truth[("01", 3)]["R"], truth[("01", 3)]["t"])
    assert ds[0].subject == "M01"
    with pytest.raises(InputError) as e:
        BiwiDataset(tmp_path, with_masks=True)[0]
    one_line(e, "frame_00001_depth_mask.png")


@pytest.mark.parametrize("text, problem", [
    ("1 0 0\n0 1 0\n0 0 1\n\n", "non-empty lines"),
    ("1 0 0\n0 1 0\n0 0 one\n\n1 2 3\n", "not numeric"),
    ("1 0 0\n0 1 0\n0 0 1\n\n1 2\n", "3 numbers"),
    ("2 0 0\n0 1 0\n0 0 1\n\n1 2 3\n", "not a rotation"),
])
def test_biwi_bad_pose_file(tmp_path, text, problem):
    p = tmp_path / "frame_00001_pose.txt"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        biwi.read_biwi_pose(p)
    assert problem in one_line(e, "frame_00001_pose.txt")


def _small_bin() -> bytes:
    d = np.zeros((12, 16), np.uint16)
    d[3:9, 4:12] = np.arange(48).reshape(6, 8) + 500
    d[5, 6] = 0
    return encode_biwi_depth(d)


@pytest.mark.parametrize("mutate, problem", [
    (lambda b: b[:5], "truncated"),
    (lambda b: b[:-3], "truncated"),
    (lambda b: b[:8], "truncated"),
    (lambda b: struct.pack("<ii", -640, 480) + b[8:], "bad depth header"),
    (lambda b: struct.pack("<ii", 640, 0) + b[8:], "bad depth header"),
    (lambda b: struct.pack("<ii", 1 << 20, 1 << 20) + b[8:], "bad depth header"),
    (lambda b: b[:8] + struct.pack("<ii", 10 ** 6, 0) + b[16:], "overruns"),
    (lambda b: b[:8] + struct.pack("<ii", 0, 10 ** 6) + b[16:], "overruns"),
    (lambda b: b[:8] + struct.pack("<ii", -1, 5) + b[16:], "negative count"),
    (lambda b: b + b"\x00\x00\x00\x00", "unexpected bytes"),
    (lambda b: struct.pack("<ii", 16, 11) + b[8:], "overruns"),  # fewer pixels than the blocks fill
])
@pytest.mark.parametrize("use_numba", [True, False])
def test_biwi_bad_rle(tmp_path, mutate, problem, use_numba):
    p = tmp_path / "frame_00001_depth.bin"
    p.write_bytes(mutate(_small_bin()))
    with pytest.raises(InputError) as e:
        decode_biwi_depth(p.read_bytes(), p, use_numba=use_numba)
    assert problem in one_line(e, "frame_00001_depth.bin")
    with pytest.raises(InputError):
        biwi_depth.read_biwi_depth(p)


def test_biwi_rle_encoder_cases():
    for d in [np.zeros((3, 5)), np.full((3, 5), 7), np.eye(4) * 900, np.array([[0, 1], [1, 0]])]:
        assert np.array_equal(decode_biwi_depth(encode_biwi_depth(d)), d.astype(np.int16))
    depth = np.array([[0.4, 1.6], [1000.49, 0]])  # floats are rounded to the mm
    assert np.array_equal(decode_biwi_depth(encode_biwi_depth(depth)), [[0, 2], [1000, 0]])
    for bad in [np.array([[-1, 0]]), np.array([[40000, 0]]), np.array([[np.nan, 0]]), np.zeros(5)]:
        with pytest.raises(InputError):
            encode_biwi_depth(bad)
    # lenient mode ignores trailing bytes like the authors' C++ reader
    assert decode_biwi_depth(_small_bin() + b"junk", strict=False).shape == (12, 16)


def test_biwi_rle_fuzz():
    """200 seeded mutations of a valid file: only InputError, and a decoded frame always has the
    size its (possibly mutated) header announces; the numba and Python walks agree."""
    rng = np.random.default_rng(1234)
    d = sphere_on_plane(Intrinsics(60.0, 60.0, 32.0, 24.0, 64, 48), centre=(0, 0, 500), radius=60, holes=0.1)
    base = encode_biwi_depth(d)
    assert np.array_equal(decode_biwi_depth(base), d.astype(np.int16))
    decoded = 0
    for case in range(200):
        b = bytearray(base)
        kind = case % 4
        if kind == 0:  # byte flips anywhere
            for pos in rng.integers(0, len(b), rng.integers(1, 6)):
                b[pos] ^= int(rng.integers(1, 256))
        elif kind == 1:  # truncation
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 2:  # flips in the header / first blocks (counts and sizes)
            for pos in rng.integers(0, min(64, len(b)), rng.integers(1, 3)):
                b[pos] ^= 1 << int(rng.integers(0, 8))
        else:  # random insertion or deletion of a few bytes
            pos = int(rng.integers(0, len(b)))
            b = b[:pos] + bytes(rng.integers(0, 256, rng.integers(1, 5)).astype(np.uint8)) + b[pos:] \
                if rng.random() < 0.5 else b[:pos] + b[pos + int(rng.integers(1, 5)):]
        data = bytes(b)
        outcomes = []
        for use_numba in (True, False):
            try:
                out = decode_biwi_depth(data, f"case{case}.bin", use_numba=use_numba)
            except InputError as e:
                assert "\n" not in str(e) and f"case{case}.bin" in str(e)
                outcomes.append(("error", str(e)))
                continue
            w, h = struct.unpack_from("<ii", data, 0)
            assert out.shape == (h, w) and out.dtype == np.int16
            outcomes.append(("ok", out.tobytes()))
        assert outcomes[0] == outcomes[1]
        decoded += outcomes[0][0] == "ok"
    assert 0 < decoded < 200  # the test exercised both outcomes


def test_biwi_subject_map():
    assert len(BIWI_SEQUENCE_TO_SUBJECT) == 24 and set(BIWI_SEQUENCE_TO_SUBJECT.values()) == set(BIWI_SUBJECTS)
    assert len(BIWI_SUBJECTS) == 20 and sum(s.startswith("F") for s in BIWI_SUBJECTS) == 6
    twice = sorted(s for s in BIWI_SUBJECTS if list(BIWI_SEQUENCE_TO_SUBJECT.values()).count(s) == 2)
    assert twice == ["F02", "F03", "F05", "M01"]
    with pytest.raises(InputError):
        biwi.biwi_subject("25")


# ------------------------------------------------------------------------------------------------ ICT-3DHP


@pytest.fixture(scope="module")
def ict_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ict")
    K = Intrinsics.preset("ict3dhp")
    rng = np.random.default_rng(2)
    truth = {}
    for seq, n in [("01", 3), ("02", 2)]:
        depths = [sphere_on_plane(K, seed=i + 7 * n) for i in range(n)]
        R = ict_euler_to_matrix(rng.uniform(-0.8, 0.8, (n, 3)))
        t = rng.uniform([-100, -100, 600], [100, 100, 1000], (n, 3))
        write_ict3dhp_sequence(root / seq, depths, R, t)
        truth[seq] = (depths, R, t)
    return root, truth


def test_ict3dhp_roundtrip(ict_root):
    root, truth = ict_root
    ds = ICT3DHPDataset(root)
    assert isinstance(ds, FrameDataset)
    assert [(k.sequence, k.frame_index) for k in ds.keys] == [("01", 1), ("01", 2), ("01", 3), ("02", 1), ("02", 2)]
    assert (root / "01" / "depthAligned" / "depth00001.png").is_file()
    for i, key in enumerate(ds.keys):
        fr = ds[i]
        depths, R, t = truth[key.sequence]
        j = key.frame_index - 1
        assert np.array_equal(fr.depth, depths[j].astype(np.float32))
        np.testing.assert_allclose(fr.rotation, R[j], atol=1e-6, rtol=0)
        np.testing.assert_allclose(fr.translation, t[j], atol=1e-6, rtol=0)
        assert fr.intrinsics == Intrinsics.preset("ict3dhp") and fr.subject == key.sequence


def test_ict3dhp_csv_layout_and_convention(ict_root):
    root, truth = ict_root
    rows = [[float(v) for v in ln.split(",")] for ln in (root / "01" / "polhemusNorm.csv").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r) == 6 for r in rows)  # no header, tx,ty,tz,rx,ry,rz
    np.testing.assert_allclose(np.array(rows)[:, :3], truth["01"][2], atol=1e-9)
    # OpenFace Euler2Rot: R = Rx(rx) Ry(ry) Rz(rz), radians
    a, b, c = 0.3, -0.5, 0.7
    Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    Ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    Rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    np.testing.assert_allclose(ict_euler_to_matrix([a, b, c]), Rx @ Ry @ Rz, atol=1e-12)
    np.testing.assert_allclose(matrix_to_ict_euler(Rx @ Ry @ Rz), [a, b, c], atol=1e-12)
    # a header line naming the columns is accepted, translation_scale applies
    csv = root / "01" / "polhemusNorm.csv"
    header_copy = root.parent / "ict_header" / "01"
    header_copy.mkdir(parents=True)
    (header_copy / "depthAligned").symlink_to(root / "01" / "depthAligned")
    (header_copy / "polhemusNorm.csv").write_text("tx,ty,tz,rx,ry,rz\n" + csv.read_text())
    ds = ICT3DHPDataset(header_copy.parent, translation_scale=10.0)
    np.testing.assert_allclose(ds.pose(0)[1], truth["01"][2][0] * 10.0, atol=1e-6)


def test_ict3dhp_missing_rows_are_skipped(tmp_path, ict_root):
    root, truth = ict_root
    depths, R, t = truth["01"]
    write_ict3dhp_sequence(tmp_path / "05", depths, R, t)
    ict3dhp.write_polhemus_csv(tmp_path / "05" / "polhemusNorm.csv", R[:2], t[:2])
    ds = ICT3DHPDataset(tmp_path)
    assert len(ds) == 2 and ds.skipped == 1


@pytest.mark.parametrize("line, problem", [("1,2,3,a,0,0", "not numeric"), ("1,2,3,0,0", "5 values"),
                                           ("1,2,3,0,nan,0", "NaN")])
def test_ict3dhp_bad_csv(tmp_path, ict_root, line, problem):
    root, truth = ict_root
    depths, R, t = truth["02"]
    write_ict3dhp_sequence(tmp_path / "03", depths, R, t)
    csv = tmp_path / "03" / "polhemusNorm.csv"
    csv.write_text(csv.read_text() + line + "\n")
    with pytest.raises(InputError) as e:
        ICT3DHPDataset(tmp_path)
    assert problem in one_line(e, "polhemusNorm.csv")


def test_png_depth_must_be_16_bit(tmp_path):
    import imageio.v3 as iio

    p8 = tmp_path / "depth00001.png"
    iio.imwrite(p8, np.full((4, 5), 9, np.uint8))
    with pytest.raises(InputError) as e:
        read_depth_png16(p8)
    assert "16-bit" in one_line(e, "depth00001.png")
    rgb = tmp_path / "rgb.png"
    iio.imwrite(rgb, np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(InputError):
        read_depth_png16(rgb)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError) as e:
        read_depth_png16(junk)
    one_line(e, "junk.png")
    small = write_depth_png16(tmp_path / "small.png", np.array([[0, 1], [2, 255]]))  # 16-bit even if small
    assert np.array_equal(read_depth_png16(small), [[0, 1], [2, 255]])


# ------------------------------------------------------------------------------------------------ FaceWarehouse


def quad_grid(nx: int = 6, ny: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A curved quad patch, vertices in mm (y up, z toward the viewer), quads 0-based."""
    x, y = np.meshgrid(np.linspace(-70, 70, nx), np.linspace(-90, 90, ny))
    z = 80 - (x ** 2 + y ** 2) / 400
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    quads = [[j * nx + i, j * nx + i + 1, (j + 1) * nx + i + 1, (j + 1) * nx + i]
             for j in range(ny - 1) for i in range(nx - 1)]
    return verts, np.array(quads)


def test_facewarehouse_roundtrip(tmp_path):
    verts, quads = quad_grid()
    rng = np.random.default_rng(3)
    land = rng.uniform(0.2, 0.8, (74, 2))
    depth = sphere_on_plane(Intrinsics.preset("kinect_v1"))
    write_facewarehouse_sample(tmp_path, 1, 0, verts, quads, land, depth)
    write_facewarehouse_sample(tmp_path, 1, 3, verts * 1.1, quads, land)
    write_facewarehouse_sample(tmp_path, 12, 0, verts, quads)  # no landmarks, no depth
    p = facewarehouse.facewarehouse_paths(tmp_path, 12, 1)
    p["obj"].write_text((tmp_path / "Tester_12/TrainingPose/pose_0.obj").read_text())
    np.save(p["depth_npy"], depth.astype(np.float32))
    ds = FaceWarehouseDataset(tmp_path)
    assert ds.keys == [(1, 0), (1, 3), (12, 0), (12, 1)]
    s = ds[0]
    np.testing.assert_allclose(s.vertices, verts, atol=1e-3)
    assert s.vertices.dtype == np.float32
    assert np.array_equal(s.polygons, quads) and s.faces.shape == (2 * len(quads), 3)
    assert np.array_equal(s.faces[:2], [quads[0][[0, 1, 2]], quads[0][[0, 2, 3]]])
    assert np.array_equal(s.landmarks, land)  # exact
    assert np.array_equal(s.depth, depth.astype(np.float32))
    assert s.subject == "Tester_1" and s.pose == 0
    mesh = s.trimesh()
    assert len(mesh.vertices) == len(verts) and len(mesh.faces) == 2 * len(quads)
    np.testing.assert_allclose(s.vertices_head_axes()[:, 1:], -s.vertices[:, 1:], atol=1e-4)
    np.testing.assert_allclose(ds[1].vertices, verts * 1.1, atol=1e-3)
    assert ds[2].landmarks is None and ds[2].depth is None
    assert np.array_equal(ds[3].depth, depth.astype(np.float32))
    # OBJ units: mm / mm_per_unit (decimetre estimate), overridable
    first_v = (tmp_path / "Tester_1/TrainingPose/pose_0.obj").read_text().splitlines()[0].split()
    np.testing.assert_allclose([float(v) for v in first_v[1:]], verts[0] / facewarehouse.FACEWAREHOUSE_MM_PER_UNIT)
    np.testing.assert_allclose(FaceWarehouseDataset(tmp_path, testers=[1], poses=[0], mm_per_unit=1.0)[0].vertices,
                               verts / facewarehouse.FACEWAREHOUSE_MM_PER_UNIT, atol=1e-5)


def test_facewarehouse_land_format(tmp_path):
    path = tmp_path / "pose_0.land"
    path.write_text("3\n0.5 0.25\n0.1 0.9\n1 0\n")
    lm = facewarehouse.read_land(path)
    assert lm.shape == (3, 2)
    np.testing.assert_allclose(land_to_pixels(lm, 640, 480), [[320, 360], [64, 48], [640, 480]])
    for text, problem in [("5\n0.1 0.2\n", "announces 5"), ("x\n", "number of landmarks"),
                          ("2\n0.1 0.2\n0.3 abc\n", "not numeric"), ("2\n0.1 0.2\n0.3\n", "2 (or 3)")]:
        path.write_text(text)
        with pytest.raises(InputError) as e:
            facewarehouse.read_land(path)
        assert problem in one_line(e, "pose_0.land")


def test_facewarehouse_obj_parsing(tmp_path):
    path = tmp_path / "pose_0.obj"
    path.write_text("# c\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 2 2\nvt 0 0\nvt 1 1\n"
                    "f 1/1 2/2 3/1 4/2\nf -1 -2 -3\n")
    mesh = facewarehouse.read_obj_mesh(path)
    assert mesh.vertices.shape == (5, 3) and isinstance(mesh.polygons, list)
    assert np.array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [4, 3, 2]])
    path.write_text("v 0 0 0\nv 1 0 0\nf 1 2 3\n")
    with pytest.raises(InputError) as e:
        facewarehouse.read_obj_mesh(path)
    assert "out of range" in one_line(e, "pose_0.obj")
    path.write_text("v 0 0 zero\n")
    with pytest.raises(InputError) as e:
        facewarehouse.read_obj_mesh(path)
    one_line(e, "pose_0.obj")


# ------------------------------------------------------------------------------------------------ splits


def _biwi_like_subjects() -> list[str]:
    rng = np.random.default_rng(5)
    return [BIWI_SEQUENCE_TO_SUBJECT[s] for s in sorted(BIWI_SEQUENCE_TO_SUBJECT) for _ in range(rng.integers(5, 40))]


def _check_partition(split, n):
    train, test = split
    assert train == sorted(train) and test == sorted(test)
    assert not set(train) & set(test) and sorted(train + test) == list(range(n))


def test_biwi_group1_split():
    subjects = _biwi_like_subjects()
    sp = splits.biwi_group1_split(subjects)
    _check_partition(sp, len(subjects))
    assert splits.BIWI_GROUP1_TEST_SUBJECTS == ("M05", "M06") == (BIWI_SUBJECTS[10], BIWI_SUBJECTS[11])
    assert sp.test == [i for i, s in enumerate(subjects) if s in ("M05", "M06")]
    assert {subjects[i] for i in sp.train} == set(BIWI_SUBJECTS) - {"M05", "M06"}
    assert splits.biwi_group1_split(subjects) == sp


def test_biwi_group1_split_on_reader(biwi_root):
    root, _ = biwi_root
    ds = BiwiDataset(root)
    sp = splits.biwi_group1_split(ds.subjects)
    assert [(ds.keys[i].sequence, ds.keys[i].frame_index) for i in sp.test] == [("11", 0), ("11", 5), ("12", 2)]


def test_random_splits():
    n = 1000
    sp = splits.biwi_group2_split(n)
    _check_partition(sp, n)
    assert len(sp.test) == 300 and splits.biwi_group2_split(n) == sp
    assert splits.biwi_group2_split(n, seed=1) != sp
    assert splits.ict3dhp_split(7) == ([], list(range(7)))
    fw = splits.facewarehouse_split(150)
    _check_partition(fw, 150)
    assert len(fw.test) == 30 and splits.facewarehouse_split(150) == fw
    with pytest.raises(InputError):
        splits.facewarehouse_split(10)
    _check_partition(splits.biwi_group2_split(0), 0)
