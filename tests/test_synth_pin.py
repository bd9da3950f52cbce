"""Pinned bytes of small synthetic datasets: refactors and speed-ups of ``depthface.synth`` must not change them.

The digests were computed on the code before the scene / sensor split (commit e6d257f) in this project's
environment (numpy, numba and the renderer's float arithmetic as installed). A digest covers every file of
the dataset directory (manifest, chunk arrays, checksums, full frames), by relative path.
If a change to the generator is *meant* to alter the data, bump ``GENERATOR_VERSION`` and re-pin here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import generate

N, CHUNK, SEED = 16, 8, 11

#: (profile, sensor preset or None) -> sha256 of the dataset tree
PINNED: dict[tuple[str, str | None], str] = {
    ('syndata1', None): '8244da12411b32ef252e17abad18a95bcc330c3ed8c745640e8e6d57a0045119',
    ('syndata2', None): 'd2cf92893c276e4bd6c5e83251811c3274b60d9cb41f86293a29072fbe33301d',
    ('syndata3', None): '04e6d58d1841a072add693aed4bf03468bab55f87a15fbfc5bc4770bf0030c22',
    ('syndata1', 'kinect_v1'): 'b8383782e298c9502b725c852ca5e4fbc025135bf4ca24b5ad108ba14b89d028',
    ('syndata2', 'kinect_v1'): 'c5e4aa2d829d2353f7d876c7b6d6a8f2c9e2b74e5d9818d237564015cfe3663a',
    ('syndata3', 'kinect_v1'): '6f5a5cc3182da79aa8e1df4969c9c243a2c8e038f0143a0f2c1603e0a82d5e70',
    ('syndata2', 'ideal'): '6c319a7c6d3b0129a8196dcee8a74ee82238a6600aac777205f5ce409522fc48',
}


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def make(tmp: Path, model, profile: str, sensor: str | None) -> Path:
    sens = None if sensor is None else SensorProfile.preset(sensor)
    return generate(tmp / f"{profile}_{sensor}", get_profile(profile).scaled(count=N), SEED, model, sens,
                    chunk_size=CHUNK, progress=False)


@pytest.mark.parametrize("profile,sensor", list(PINNED))
def test_dataset_bytes_are_pinned(tmp_path, model, profile, sensor):
    assert tree_digest(make(tmp_path, model, profile, sensor)) == PINNED[(profile, sensor)]


def test_fast_paths_equal_their_numpy_and_torch_references(model):
    """The speed-ups of the generator reproduce the straightforward computations bit for bit."""
    import numpy as np
    import torch

    from depthface.geometry.rotations import euler_to_matrix, matrix_to_quaternion
    from depthface.synth.skull import quantile_linear, skull_scale
    from depthface.synth.render import depth_to_uint16
    from depthface.synth.scenes import SceneSampler, quaternions

    rng = np.random.default_rng(0)
    d = rng.uniform(-10, 70000, (64, 64)).astype(np.float32)
    d[0, :8] = [0.5, 1.5, 2.5, -0.5, 65535.5, 65534.5, 1e9, 0.0]
    np.testing.assert_array_equal(depth_to_uint16(d), np.clip(np.rint(d), 0, 65535).astype(np.uint16))
    np.testing.assert_array_equal(depth_to_uint16(d.astype(np.float64)),
                                  np.clip(np.rint(d.astype(np.float64)), 0, 65535).astype(np.uint16))
    for n in (1, 2, 3, 10, 1001):
        x = rng.normal(size=n)
        for q in (0.0, 0.3, 0.5, 0.98, 1.0):
            assert quantile_linear(x, q) == float(np.quantile(x, q))
    P = rng.normal(0, 90, (5000, 3))
    Q = P[P[:, 1] < 20.0]
    dd = (Q - np.array((0.0, -15.0, -12.0))) / np.array((80.0, 97.0, 97.0))
    f = (np.hypot(dd[:, 0], dd[:, 2]) ** 2.5 + np.abs(dd[:, 1]) ** 2.5) ** (1 / 2.5)
    assert skull_scale(P) == float(np.quantile(f, 0.98))
    sampler = SceneSampler(model, get_profile("syndata2").scaled(count=40), 3)
    batch = sampler.scenes(range(20))
    for i, sc in enumerate(batch):
        R = euler_to_matrix(torch.as_tensor(sc.ypr, dtype=torch.float64)).numpy()
        np.testing.assert_array_equal(sc.rotation, R)
        np.testing.assert_array_equal(quaternions([sc])[0], matrix_to_quaternion(torch.as_tensor(R)).numpy())
    np.testing.assert_array_equal(quaternions(batch), np.stack([quaternions([s])[0] for s in batch]))
