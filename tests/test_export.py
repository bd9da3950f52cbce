"""ONNX export of DAPoseNet / DASHapeNet (F + R) and the ONNX Runtime wrappers (fast: random weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from depthface.errors import DepthfaceError  # noqa: E402
from depthface.models import export as ex  # noqa: E402
from depthface.models.config import NetConfig  # noqa: E402
from depthface.models.networks import DAPoseNet, DASHapeNet  # noqa: E402

PRESETS = ("tiny", "small")
KINDS = {"pose": DAPoseNet, "shape": DASHapeNet}
N_VERTICES = 1000
RTOL = 1e-4


def randomize(net: nn.Module, seed: int) -> nn.Module:
    """Non-trivial weights and batch-norm statistics (so the exporter's BN folding is exercised)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return net


def make_net(preset: str, kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomize(KINDS[kind](NetConfig.preset(preset, n_vertices=N_VERTICES)), seed + 1)


def outputs(result) -> tuple[torch.Tensor, ...]:
    return (result,) if isinstance(result, torch.Tensor) else tuple(result)


def assert_close(got: torch.Tensor, ref: torch.Tensor) -> None:
    assert got.shape == ref.shape and got.dtype == torch.float32
    err = (got - ref).abs().max() / ref.abs().max().clamp_min(1e-12)
    assert err <= RTOL, f"relative error {float(err):.2e}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[tuple[str, str], tuple[nn.Module, Path]]:
    """Each (preset, kind) network, exported once; the network is left in train mode by its caller."""
    out = tmp_path_factory.mktemp("onnx")
    res = {}
    for i, preset in enumerate(PRESETS):
        for kind in KINDS:
            net = make_net(preset, kind, seed=10 * i + len(kind))
            path = ex.export_onnx(net, out / f"{preset}_{kind}.onnx", kind)
            assert net.training, "export must not change the caller's module mode"
            res[preset, kind] = (net.eval(), path)
    return res


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch", [3, 1])
def test_onnxruntime_matches_torch(exported, preset: str, kind: str, batch: int) -> None:
    net, path = exported[preset, kind]
    x = torch.rand(batch, 3, 160, 160, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    sess = ex.open_session(path, threads=1)
    got = sess.run(list(ex.OUTPUT_NAMES[kind]), {ex.INPUT_NAME: x.numpy()})
    with torch.no_grad():
        ref = outputs(net(x))
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert_close(torch.from_numpy(g), r)


@pytest.mark.parametrize("preset", PRESETS)
def test_wrappers_match_torch(exported, preset: str) -> None:
    x = torch.rand(2, 3, 160, 160, generator=torch.Generator().manual_seed(7)) * 2 - 1
    pose_net, pose_path = exported[preset, "pose"]
    shape_net, shape_path = exported[preset, "shape"]
    pose = ex.OnnxPoseNet(pose_path).eval().to("cpu")
    shape = ex.OnnxShapeNet(shape_path, threads=1)
    with torch.no_grad():
        q_ref, t_ref = pose_net(x)
        d_ref = shape_net(x)
    q, t = pose(x)
    assert_close(q, q_ref)
    assert_close(t, t_ref)
    assert torch.allclose(q.norm(dim=-1), torch.ones(2), atol=1e-5)
    d = shape(x)
    assert d.shape == (2, N_VERTICES, 3)
    assert_close(d, d_ref)
    assert pose.cfg == pose_net.cfg and shape.cfg == shape_net.cfg
    assert "CPUExecutionProvider" in pose.providers
    assert ex.shared_pool_exists(), "wrappers share ORT's process-wide pool by default"


def test_shape_inference_module_equals_forward() -> None:
    net = make_net("tiny", "shape").eval()
    x = torch.rand(2, 3, 160, 160) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ex.ShapeInference(net)(x), net(x))


def test_fixed_batch_export(tmp_path: Path) -> None:
    net = make_net("tiny", "pose")
    path = ex.export_onnx(net, tmp_path / "fixed.onnx", "pose", dynamic_batch=False, verify_batch=4)
    assert ex.open_session(path).get_inputs()[0].shape == [4, 3, 160, 160]


@pytest.mark.parametrize("content", [None, b"", b"not an onnx model\x00\x01garbage"])
def test_missing_or_corrupt_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "broken.onnx"
    if content is not None:
        path.write_bytes(content)
    for cls in (ex.OnnxPoseNet, ex.OnnxShapeNet):
        with pytest.raises(DepthfaceError) as info:
            cls(path)
        msg = str(info.value)
        assert str(path) in msg and "\n" not in msg


def test_truncated_file(exported, tmp_path: Path) -> None:
    _, path = exported["tiny", "pose"]
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DepthfaceError, match="cut.onnx") as info:
        ex.OnnxPoseNet(cut)
    assert "\n" not in str(info.value)


def test_wrong_kind_is_refused(exported) -> None:
    _, pose_path = exported["tiny", "pose"]
    with pytest.raises(DepthfaceError, match="not a depthface shape graph"):
        ex.OnnxShapeNet(pose_path)
    with pytest.raises(DepthfaceError, match="DASHapeNet"):
        ex.export_onnx(make_net("tiny", "pose"), "unused.onnx", "shape")
    with pytest.raises(DepthfaceError, match="unknown export kind"):
        ex.export_onnx(make_net("tiny", "pose"), "unused.onnx", "both")


def test_verification_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "relative_error", lambda got, ref: 1.0)
    path = tmp_path / "bad.onnx"
    with pytest.raises(DepthfaceError, match="differs from PyTorch") as info:
        ex.export_onnx(make_net("tiny", "pose"), path, "pose")
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_verify_detects_other_weights(exported) -> None:
    _, path = exported["tiny", "pose"]
    other = make_net("tiny", "pose", seed=123).eval()
    with pytest.raises(DepthfaceError, match="differs from PyTorch"):
        ex.verify_export(other, path, "pose", torch.rand(2, 3, 160, 160) * 2 - 1)


def test_relative_error() -> None:
    ref = np.array([1.0, -4.0, 0.0], dtype=np.float32)
    assert ex.relative_error(ref, ref) == 0.0
    assert ex.relative_error(ref + np.float32(4e-4), ref) == pytest.approx(1e-4, rel=1e-3)
