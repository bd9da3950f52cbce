"""The hostile-user corpus: >= 1,000 bad or odd inputs of >= 50 kinds through ``predict``'s library run and the API.

Expectations: 0 tracebacks (no exception escapes, no "internal error" row), a result for every run
(``poses.csv`` written, one row per depth-like input), every bad input named in its row, 0 poses for the
faceless frames (the corpus holds no face at all), nothing written outside ``--out``.
The full version (``-m slow``) multiplies every kind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from depthface.errors import DepthfaceError, InputError
from depthface.geometry.camera import Intrinsics
from depthface.inference import Reconstructor
from depthface.inference.run import Camera, frame_intrinsics, run_predict
from depthface.models.config import NetConfig
from depthface.models.networks import DAPoseNet

W, H = 160, 120  # small frames: the kinect_v1 preset scaled by 1/4
K_SMALL = frame_intrinsics(Intrinsics.preset("kinect_v1"), True, W, H)


@pytest.fixture(scope="module")
def rec(tiny_runs):
    return Reconstructor.from_checkpoints(*tiny_runs)


# ----------------------------------------------------------------------------------------------
# scenes without a face (mm, small frames)


def _rays(k: Intrinsics = K_SMALL):
    u, v = np.meshgrid(np.arange(k.width), np.arange(k.height))
    return np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones(u.shape)], -1)


def ellipsoid_scene(rng, axes=None, centre=None, background: float | None = 1800.0, torso: bool = False,
                    noise: float = 1.5) -> np.ndarray:
    """A head-sized ellipsoid (a sphere when the axes are equal) in front of a wall, optionally on a torso."""
    d = _rays()
    c = np.asarray(centre if centre is not None else [rng.uniform(-80, 80), rng.uniform(-60, 60), rng.uniform(700, 1400)])
    a = np.asarray(axes if axes is not None else [rng.uniform(70, 100), rng.uniform(90, 130), rng.uniform(80, 110)])
    z = np.full(d.shape[:2], background or 0.0)
    for cc, aa in [(c, a)] + ([(c + [0, a[1] + 350, 40], np.array([230.0, 300.0, 140.0]))] if torso else []):
        dd, oc = d / aa, -cc / aa
        A, B, C = (dd * dd).sum(-1), 2 * (dd * oc).sum(-1), (oc * oc).sum() - 1
        disc = B * B - 4 * A * C
        s = np.where(disc > 0, (-B - np.sqrt(np.clip(disc, 0, None))) / (2 * A), np.inf)
        z = np.where((s > 0) & (s < np.where(z > 0, z, np.inf)), s, z)
    z = z + rng.normal(0, noise, z.shape) * (z > 0)
    return np.clip(np.rint(z), 0, 65535).astype(np.uint16)


def noise_blob(rng) -> np.ndarray:
    z = np.zeros((H, W))
    cy, cx, r = rng.integers(30, 90), rng.integers(40, 120), rng.integers(10, 30)
    yy, xx = np.ogrid[:H, :W]
    blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    z[blob] = rng.uniform(1900, 2100, blob.sum())
    return z.astype(np.uint16)


# ----------------------------------------------------------------------------------------------
# file writers: each kind writes one file (or entry) and says whether it must be unreadable


def _npy_bytes(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=True)
    return b.getvalue()


def _npy_header(shape, descr="<u2", version=1) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(header)) + header


def _npz(members: dict[str, bytes]) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in members.items():
            z.writestr(n, data)
    return b.getvalue()


def _png(arr: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", arr, extension=".png")


def _biwi(w: int, h: int, blocks: list[tuple[int, int]], trailing: bytes = b"") -> bytes:
    out = struct.pack("<ii", w, h)
    for empty, full in blocks:
        out += struct.pack("<ii", empty, full) + np.full(max(full, 0), 900, "<i2").tobytes()
    return out + trailing


def _good(rng) -> np.ndarray:
    return ellipsoid_scene(rng)


def _bad_crc(rng) -> bytes:
    data = bytearray(_npz({"depth.npy": _npy_bytes(_good(rng))}))
    data[60] ^= 0xFF  # inside the deflated member
    return bytes(data)


#: kind -> (file name suffix, writer(rng) -> bytes, must be unreadable)
FILE_KINDS: dict[str, tuple[str, object, bool]] = {
    "npy_empty": (".npy", lambda r: b"", True),
    "npy_random_bytes": (".npy", lambda r: r.bytes(int(r.integers(1, 4000))), True),
    "npy_truncated": (".npy", lambda r: _npy_bytes(_good(r))[: int(r.integers(20, 2000))], True),
    "npy_header_200000_squared": (".npy", lambda r: _npy_header((200000, 200000)) + b"\0" * 64, True),
    "npy_header_garbage": (".npy", lambda r: b"\x93NUMPY\x01\x00\x10\x00{'descr': 1/0}  \n", True),
    "npy_version_9": (".npy", lambda r: b"\x93NUMPY\x09\x00" + b"\0" * 40, True),
    "npy_object_array": (".npy", lambda r: _npy_bytes(np.array([{"a": 1}, None], dtype=object)), True),
    "npy_3d": (".npy", lambda r: _npy_bytes(np.zeros((2, 4, 5), np.uint16)), True),
    "npy_1d": (".npy", lambda r: _npy_bytes(np.arange(50, dtype=np.uint16)), True),
    "npy_0d": (".npy", lambda r: _npy_bytes(np.array(900.0)), True),
    "npy_bool": (".npy", lambda r: _npy_bytes(np.ones((H, W), bool)), True),
    "npy_complex": (".npy", lambda r: _npy_bytes(np.ones((H, W), np.complex64)), True),
    "npy_strings": (".npy", lambda r: _npy_bytes(np.full((4, 4), "mm")), True),
    "npy_structured": (".npy", lambda r: _npy_bytes(np.zeros((4, 4), dtype=[("z", "<u2"), ("c", "u1")])), True),
    "npy_nan": (".npy", lambda r: _npy_bytes(np.where(r.random((H, W)) < 0.5, np.nan, 900.0)), True),
    "npy_inf": (".npy", lambda r: _npy_bytes(np.full((H, W), np.inf)), True),
    "npy_negative": (".npy", lambda r: _npy_bytes(-_good(r).astype(np.float32)), True),
    "npy_all_zero": (".npy", lambda r: _npy_bytes(np.zeros((H, W), np.uint16)), True),
    "npy_metres": (".npy", lambda r: _npy_bytes(_good(r).astype(np.float32) / 1000), True),
    "npy_1x1": (".npy", lambda r: _npy_bytes(np.full((1, 1), 800, np.uint16)), False),
    "npy_wide_1x3000": (".npy", lambda r: _npy_bytes(np.full((1, 3000), 800, np.uint16)), False),
    "npy_wall": (".npy", lambda r: _npy_bytes(np.full((H, W), r.integers(600, 3000), np.uint16)), False),
    "npy_float16": (".npy", lambda r: _npy_bytes(_good(r).astype(np.float16)), False),
    "npy_int64_huge": (".npy", lambda r: _npy_bytes(np.full((H, W), 2**40, np.int64)), False),
    "npy_uint8": (".npy", lambda r: _npy_bytes(r.integers(0, 255, (H, W)).astype(np.uint8)), False),
    "npy_fortran_bigendian": (".npy", lambda r: _npy_bytes(np.asfortranarray(_good(r).astype(">u2"))), False),
    "npy_uniform_noise": (".npy", lambda r: _npy_bytes(r.uniform(500, 4000, (H, W)).astype(np.float32)), False),
    "npy_sphere": (".npy", lambda r: _npy_bytes(ellipsoid_scene(r, axes=[r.uniform(80, 100)] * 3)), False),
    "npy_ellipsoid": (".npy", lambda r: _npy_bytes(ellipsoid_scene(r)), False),
    "npy_ellipsoid_torso": (".npy", lambda r: _npy_bytes(ellipsoid_scene(r, torso=True, background=None)), False),
    "npy_noise_blob_2m": (".npy", lambda r: _npy_bytes(noise_blob(r)), False),
    "npy_other_aspect": (".npy", lambda r: _npy_bytes(np.full((100, 100), 900, np.uint16)), True),
    "npz_bad_crc": (".npz", _bad_crc, True),
    "npz_truncated": (".npz", lambda r: _npz({"depth.npy": _npy_bytes(_good(r))})[: int(r.integers(30, 400))], True),
    "npz_is_npy": (".npz", lambda r: _npy_bytes(_good(r)), True),
    "npz_empty_zip": (".npz", lambda r: _npz({}), True),
    "npz_two_arrays": (".npz", lambda r: _npz({"a.npy": _npy_bytes(_good(r)), "b.npy": _npy_bytes(_good(r))}), True),
    "npz_object_member": (".npz", lambda r: _npz({"depth.npy": _npy_bytes(np.array([None], dtype=object))}), True),
    "npz_header_bomb": (".npz", lambda r: _npz({"depth.npy": _npy_header((100000, 100000)) + b"\0" * 1000}), True),
    "npz_text_member": (".npz", lambda r: _npz({"readme.txt": b"hello"}), True),
    "npz_random_bytes": (".npz", lambda r: r.bytes(int(r.integers(1, 3000))), True),
    "npz_good_sphere": (".npz", lambda r: _npz({"depth.npy": _npy_bytes(ellipsoid_scene(r, axes=[90.0] * 3))}), False),
    "png_8bit": (".png", lambda r: _png(r.integers(0, 255, (H, W)).astype(np.uint8)), True),
    "png_rgb8": (".png", lambda r: _png(np.zeros((H, W, 3), np.uint8)), True),
    "png_truncated": (".png", lambda r: _png(_good(r))[: int(r.integers(10, 200))], True),
    "png_random_bytes": (".png", lambda r: r.bytes(int(r.integers(1, 3000))), True),
    "png_header_100000_squared": (".png", lambda r: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + struct.pack(">II", 100000, 100000)
                                  + b"\x10\0\0\0\0" + r.bytes(100), True),
    "png_empty": (".png", lambda r: b"", True),
    "png_jpeg_bytes": (".png", lambda r: b"\xff\xd8\xff\xe0\0\x10JFIF\0" + r.bytes(200), True),
    "png_all_zero16": (".png", lambda r: _png(np.zeros((H, W), np.uint16)), True),
    "png_good_ellipsoid": (".png", lambda r: _png(ellipsoid_scene(r)), False),
    "bin_random_bytes": (".bin", lambda r: r.bytes(int(r.integers(1, 3000))), True),
    "bin_empty": (".bin", lambda r: b"", True),
    "bin_negative_count": (".bin", lambda r: _biwi(W, H, [(-5, 10)]), True),
    "bin_huge_header": (".bin", lambda r: _biwi(200000, 200000, [(0, 10)]), True),
    "bin_overrun": (".bin", lambda r: _biwi(4, 4, [(0, 40)]), True),
    "bin_truncated": (".bin", lambda r: _biwi(W, H, [(0, W * H)])[: int(r.integers(9, 500))], True),
    "bin_trailing": (".bin", lambda r: _biwi(4, 4, [(0, 16)], trailing=b"xyz1"), True),
}

#: kinds that reach the networks (valid depth with a head-like region): few copies in the default run
SCENE_KINDS = {"npy_float16", "npy_fortran_bigendian", "npy_uniform_noise", "npy_sphere", "npy_ellipsoid",
               "npy_ellipsoid_torso", "npy_noise_blob_2m", "npz_good_sphere", "png_good_ellipsoid"}

#: names that must survive any byte sequence and never share an output folder
ODD_NAMES = [b"a b.npy", b"a?b.npy", b"a_b.npy", b"A_B.npy", b"caf\xc3\xa9.npy", b"bad\xff\xfename.npy",
             b"new\nline.npy", b"-dash.npy", b"UPPER.NPY", b"x" * 200 + b".npy", b"..dots.npy", b"tab\tname.npy",
             b"quote'\".npy", b"semi;colon,comma.npy", b"star*.npy", b"back\\slash.npy"]


def make_corpus(root: Path, reps: int = 21, scene_reps: int = 3, seed: int = 0) -> dict[str, tuple[str, bool]]:
    """Write the corpus under ``root`` (10 folders). Returns ``{relative path: (kind, must be unreadable)}``
    for every depth-like entry that ``predict`` must report as a row."""
    rng = np.random.default_rng(seed)
    expect: dict[str, tuple[str, bool]] = {}
    kinds = list(FILE_KINDS.items())
    for i, (kind, (suffix, write, bad)) in enumerate(kinds):
        folder = root / f"group{i % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(scene_reps if kind in SCENE_KINDS else reps):
            name = f"{kind}_{j:02d}{suffix}"
            (folder / name).write_bytes(write(rng))
            expect[f"{folder.name}/{name}"] = (kind, bad)
    # special entries
    sp = root / "special"
    sp.mkdir()
    for j in range(3):
        os.mkfifo(sp / f"fifo_{j}.png")
        expect[f"special/fifo_{j}.png"] = ("fifo", True)
        os.symlink("/dev/zero", sp / f"zero_{j}.bin")
        expect[f"special/zero_{j}.bin"] = ("link_to_dev_zero", True)
        os.symlink(sp / f"missing_{j}.npy", sp / f"dangling_{j}.npy")
        expect[f"special/dangling_{j}.npy"] = ("dangling_link", True)
        os.symlink(sp / f"loop_{j}.npy", sp / f"loop_{j}.npy")
        expect[f"special/loop_{j}.npy"] = ("link_loop", True)
        (sp / f"folder_{j}.png").mkdir()
        os.symlink(root, sp / f"link_to_root_{j}")  # a link to a folder above: not followed
    # odd names (good-looking faceless frames)
    names = root / "names"
    names.mkdir()
    for n in ODD_NAMES:
        p = os.path.join(os.fsencode(names), n)
        with open(p, "wb") as f:
            f.write(_npy_bytes(np.full((H, W), 1500, np.uint16)))
        expect[f"names/{os.fsdecode(n)}"] = ("odd_name", False)
    # Biwi layout: a good sequence, a binary depth.cal, a depth.cal with inf, one with missing lines
    from depthface.data.biwi_depth import write_biwi_depth
    from depthface.geometry.camera import BiwiCalibration, write_biwi_calibration

    cals = {"01": None, "02": b"\x00\xff\xfe binary \x80" * 20, "03": b"inf 0 80\n0 inf 60\n0 0 1\n", "04": b"1 2\n"}
    for seq, cal in cals.items():
        d = root / "biwi" / "hpdb" / seq
        d.mkdir(parents=True)
        if cal is None:
            write_biwi_calibration(d / "depth.cal", BiwiCalibration(K_SMALL, np.zeros(4), np.eye(3), np.zeros(3)))
        else:
            (d / "depth.cal").write_bytes(cal)
        for j in range(4):
            write_biwi_depth(d / f"frame_{j:05d}_depth.bin", ellipsoid_scene(rng))
            expect[f"biwi/hpdb/{seq}/frame_{j:05d}_depth.bin"] = ("biwi_" + ("ok" if cal is None else "bad_cal"),
                                                                 cal is not None)
    # a depthface dataset folder: label arrays skipped, full frames read
    ds = root / "dataset"
    (ds / "chunks" / "00000").mkdir(parents=True)
    (ds / "frames").mkdir()
    (ds / "manifest.json").write_text(json.dumps({"format": "depthface-synth", "intrinsics": K_SMALL.to_dict()}))
    for name in ("depth", "quaternion", "translation", "ypr", "landmarks3d", "crop_centre"):
        np.save(ds / "chunks" / "00000" / f"{name}.npy", np.zeros((3, 4), np.float32))
    (ds / "chunks" / "00000" / "checksums.json").write_text("{}")
    for j in range(3):
        np.save(ds / "frames" / f"{j:06d}.npy", ellipsoid_scene(rng))
        expect[f"dataset/frames/{j:06d}.npy"] = ("dataset_full_frame", False)
    return expect


def _check_run(tmp_path: Path, rec, reps: int, scene_reps: int) -> None:
    corpus = tmp_path / "corpus"
    expect = make_corpus(corpus, reps=reps, scene_reps=scene_reps)
    kinds = {k for k, _ in expect.values()}
    assert len(expect) >= 1000 and len(kinds) >= 50, (len(expect), len(kinds))
    before = sorted(p for p in tmp_path.rglob("*") if not p.is_symlink())
    out = tmp_path / "out"
    messages: list[str] = []
    summary = run_predict(rec, [corpus], out, Camera(K_SMALL, True), echo=messages.append)
    after = sorted(p for p in tmp_path.rglob("*") if not p.is_symlink())
    assert [p for p in after if p not in before and out not in p.parents and p != out] == []  # writes only in out
    rows = list(csv.DictReader((out / "poses.csv").open(encoding="utf-8")))
    assert len(rows) == len(expect) == summary.n_frames
    by_name = {r["frame"]: r for r in rows}
    assert len(by_name) == len(rows)
    from depthface.inference.io import display_name

    for rel, (kind, bad) in expect.items():
        r = by_name[display_name(rel)]
        assert "internal error" not in r["reason"], (rel, r["reason"])
        assert r["status"] in ("face", "no face", "unreadable")
        assert r["status"] != "face" and r["yaw_deg"] == "" and r["qw"] == "", (rel, kind, r["reason"])  # no face
        if bad:
            assert r["status"] == "unreadable", (rel, kind, r["reason"])
            assert display_name(rel).split("/")[-1] in r["reason"], (rel, r["reason"])  # the file is named
    for r in json.loads((out / "poses.json").read_text())["frames"]:
        assert r["status"] == "face" or "yaw_deg" not in r
    assert any("depthface dataset" in s for s in summary.skipped)
    assert any("link to a folder" in s for s in summary.skipped)
    assert any("metres" in by_name[display_name(rel)]["reason"] for rel, (k, _) in expect.items() if k == "npy_metres")
    assert summary.count("unreadable") >= sum(bad for _, bad in expect.values())


def test_corpus_predict_run(tmp_path, rec):
    _check_run(tmp_path, rec, reps=21, scene_reps=3)


@pytest.mark.slow
def test_corpus_predict_run_full(tmp_path, rec):
    _check_run(tmp_path, rec, reps=60, scene_reps=30)


# ----------------------------------------------------------------------------------------------
# the API


def _bad_intrinsics():
    good = dict(fx=72.0, fy=72.0, cx=80.0, cy=60.0, width=W, height=H)
    for field in ("fx", "fy"):
        for v in (0.0, -1.0, float("nan"), float("inf"), -float("inf"), "72", None, True):
            yield {**good, field: v}
    for field in ("cx", "cy"):
        for v in (float("nan"), float("inf"), -float("inf"), "80", None):
            yield {**good, field: v}
    for field in ("width", "height"):
        for v in (0, -5, 1.5, "160", None, True):
            yield {**good, field: v}


def test_invalid_intrinsics_refused_at_construction():
    n = 0
    for kw in _bad_intrinsics():
        with pytest.raises(InputError) as e:
            Intrinsics(**kw)
        assert "intrinsics" in str(e.value) and "\n" not in str(e.value)
        n += 1
    assert n >= 29
    for bad in ("inf,inf,320,240", "nan,500,320,240", "0,500,320,240", "500,500,nan,240", "1,2,3"):
        with pytest.raises(InputError):
            Intrinsics.parse(bad)
    with pytest.raises(InputError, match="principal point"):
        Intrinsics(500.0, 500.0, 700.0, 240.0, 640, 480).check_principal_point()


def _api_cases(rng):
    good = ellipsoid_scene(rng).astype(np.float32)
    t = torch.from_numpy(good.copy()).requires_grad_(True)
    depths = [[[1, 2], [3]], "depth", None, {"depth": good}, [good, good[:10]], t, good[None, None], good[:, :, None],
              np.zeros((H, W)), np.full((H, W), np.nan), -good, good.astype(np.complex64), good.astype(bool),
              good.astype(object), good / 1000, np.zeros((0, 0)), good[:1], good.astype(np.float16), good.tolist()]
    ks = [K_SMALL, Intrinsics.preset("kinect_v1"), {"fx": 1}, "kinect_v1", None, (72, 72, 80, 60),
          Intrinsics(72.0, 72.0, 500.0, 60.0, W, H), Intrinsics(72.0, 72.0, 80.0, -1.0, W, H)]
    centres = [None, [0, 0, 900], [0, 0, -5], [np.nan, 0, 900], [[1, 2], [3]], "centre", [0, 0]]
    for i in range(200):
        yield depths[i % len(depths)], ks[(i // len(depths)) % len(ks)], centres[i % len(centres)]


def test_api_200_calls_raise_only_input_errors(rec):
    rng = np.random.default_rng(3)
    outcomes = {"result": 0, "input_error": 0}
    for depth, k, centre in _api_cases(rng):
        try:
            res = rec.predict(depth, k, centre=centre)
        except InputError as e:
            assert "\n" not in str(e)
            outcomes["input_error"] += 1
            continue
        outcomes["result"] += 1
        assert not res.found  # no face in these frames
    assert sum(outcomes.values()) == 200 and outcomes["result"] > 0 and outcomes["input_error"] > 0


def test_options_raise_one_line_errors(tmp_path):
    from depthface.models.losses import loss_d_adv_t, loss_g
    from depthface.train.common import load_checkpoint, load_network, pick_device
    from depthface.train.shape import ShapeTrainConfig

    bad = {"list": [1, 2, 3], "no_net_config": {"kind": "pose", "model": {}},
           "bad_net_config": {"kind": "pose", "net_config": {"widths": 3}, "model": {}},
           "no_model": {"kind": "pose", "net_config": NetConfig.preset("tiny").to_dict()},
           "bad_weights": {"kind": "pose", "net_config": NetConfig.preset("tiny").to_dict(), "model": {"x": torch.zeros(1)}}}
    for name, obj in bad.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        with pytest.raises(InputError):
            load_network(tmp_path / f"{name}.pt", "pose", DAPoseNet)
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07\x12\x07pytorch")
    with pytest.raises(InputError, match="ONNX model, use --backend onnx"):
        load_checkpoint(tmp_path / "m.onnx")
    if not torch.cuda.is_available():
        for dev in ("cuda", "cuda:7"):
            with pytest.raises(DepthfaceError, match="CUDA is not available"):
                pick_device(dev)
    with pytest.raises(DepthfaceError):
        pick_device("tpu:0")
    logit, disp = torch.zeros(2), torch.zeros(2, 3, 3)
    for form in ("Text", "TEXT", "", None, "printed "):
        with pytest.raises(DepthfaceError, match="form"):
            loss_d_adv_t(logit, form)
    with pytest.raises(DepthfaceError, match="form"):
        loss_g(logit, disp, disp, "Paper")
    with pytest.raises(DepthfaceError, match="eq5_form"):
        ShapeTrainConfig(eq5_form="Text")
