"""RealSense recordings and cameras (skipped without pyrealsense2): a recording written in the test
through the SDK's software device and recorder is read back with its intrinsics and depth scale."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from depthface.errors import DepthfaceError, InputError
from depthface.geometry.camera import Intrinsics

rs = pytest.importorskip("pyrealsense2")

from depthface.inference.realsense import bag_sequence, live_sequence, write_recording  # noqa: E402


def test_recording_roundtrip_with_intrinsics_and_depth_scale(tmp_path):
    k = Intrinsics(60.0, 61.0, 31.5, 23.5, 64, 48)
    frames = [np.full((48, 64), 1000 + 10 * i, np.uint16) for i in range(4)]
    frames[2][:5] = 0
    path = write_recording(tmp_path / "rec.db3", frames, k, depth_scale=0.0001, fps=30)
    got = list(bag_sequence(path))
    assert len(got) == 4
    for f, raw in zip(got, frames):
        assert f.intrinsics == k
        np.testing.assert_allclose(f.depth, raw * 0.1, rtol=1e-6)  # 100 um units -> mm
    np.testing.assert_allclose([f.time_s for f in got], np.arange(4) / 30, atol=1e-6)


def test_recording_errors_are_one_line(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        bag_sequence(tmp_path / "missing.db3")
    (tmp_path / "junk.db3").write_bytes(b"junk")
    with pytest.raises(InputError) as e:
        bag_sequence(tmp_path / "junk.db3")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError):
        bag_sequence(tmp_path / "x.png")


def test_live_camera_without_a_device(monkeypatch):
    if len(rs.context().query_devices()):
        pytest.skip("a RealSense camera is attached")
    with pytest.raises(DepthfaceError, match="no RealSense camera attached"):
        live_sequence()
    from depthface.cli.main import app

    r = CliRunner().invoke(app, ["track", "--camera", "realsense", "--pose", "nowhere"])
    assert isinstance(r.exception, DepthfaceError) and "no RealSense camera" in str(r.exception)


def test_track_reads_a_recording(tmp_path, tiny_runs):
    import csv

    from depthface.cli.main import app

    k = Intrinsics.preset("realsense_d435")
    wall = np.full((k.height, k.width), 2000, np.uint16)  # 2 m away (1 mm units)
    path = write_recording(tmp_path / "wall.db3", [wall, wall, wall], k, depth_scale=0.001)
    r = CliRunner().invoke(app, ["track", str(path), "--pose", str(tiny_runs[0]), "--out", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((tmp_path / "t" / "track.csv").open()))
    assert [row["state"] for row in rows] == ["lost"] * 3 and "no head" in rows[0]["reason"]


def test_reading_part_of_a_recording_stops_cleanly(tmp_path):
    from itertools import islice

    k = Intrinsics(60.0, 61.0, 31.5, 23.5, 64, 48)
    path = write_recording(tmp_path / "long.db3", [np.full((48, 64), 900 + i, np.uint16) for i in range(30)], k)
    seq = bag_sequence(path)
    first = list(islice(seq, 3))
    seq.close()
    assert [f.depth[0, 0] for f in first] == [900.0, 901.0, 902.0]
