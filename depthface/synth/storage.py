"""On-disk synthetic datasets: manifest + chunked arrays, sharded and resumable generation, verify.

Layout of a dataset directory::

    manifest.json              profile, generator version, face-model sha256, seed, counts,
                               intrinsics, sensor, chunk size, the identity split
    poses.npy                  (only with --poses-from) the real pose list sampled from
    chunks/00000/depth.npy     (K, 160, 160) uint16 mm metric crops around the crop centre
    chunks/00000/<label>.npy   one array per label field (see ``scenes.label_fields``)
    chunks/00000/checksums.json  sha256 of every file of the chunk
    frames/000000.npy          a few full frames (uint16 mm) for pictures

A chunk holds samples ``[c K, (c + 1) K)``. It is made entirely in memory from ``(seed, index)``
alone, written to a temporary directory and renamed into place, so a chunk directory is either
complete or absent: an interrupted run resumes by making the chunks that are missing, and shard
``i/N`` makes chunks ``c`` with ``c % N == i``. Shards merged (``depthface data merge``) are
byte-identical to a single-process run.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from depthface.errors import InputError
from depthface.files import file_problem
from depthface.facemodel import MorphableModel, load_face_model
from depthface.geometry.camera import Intrinsics
from depthface.geometry.conventions import CROP_PIXELS, CROP_SIZE_MM
from depthface.synth.profiles import SynthProfile
from depthface.synth.render import depth_to_uint16, render_depth
from depthface.synth.sample import STREAM_SENSOR, make_sample
from depthface.synth.scenes import Scene, SceneSampler, crop_sample, label_fields, quaternions
from depthface.synth.sensor import SimulationProfile, as_simulation, simulate_frame
from depthface.synth.sensors import SensorProfile

GENERATOR_VERSION = "1"
#: the manifest format of an imported real dataset (``depthface data import``): crops of real frames
#: with their pose labels, written by :mod:`depthface.synth.real_import` through :func:`write_chunk`
REAL_FORMAT = "depthface-real"
FORMATS = ("depthface-synth", REAL_FORMAT)
#: arrays only imported real datasets have: 0 = crop written, 1 = no head found, 2 = unreadable frame;
#: the frame's number in its dataset's file names
REAL_FIELDS: dict[str, tuple[tuple[int, ...], str]] = {"status": ((), "uint8"), "frame_number": ((), "int64")}
DEFAULT_CHUNK = 256
DEFAULT_FULL_FRAMES = 8


def identity_split(n_identities: int, fractions: tuple[float, float, float], seed: int) -> dict[str, list[int]]:
    """Split identities (never frames) into train / val / test with a seeded permutation.

    Every split gets at least one identity when ``n_identities >= 3``.
    """
    perm = np.random.default_rng(np.random.SeedSequence([seed, 7])).permutation(n_identities).tolist()
    n_test = max(1, round(fractions[2] * n_identities)) if n_identities >= 3 else 0
    n_val = max(1, round(fractions[1] * n_identities)) if n_identities >= 3 else 0
    n_train = n_identities - n_val - n_test
    return {"train": sorted(perm[:n_train]), "val": sorted(perm[n_train:n_train + n_val]),
            "test": sorted(perm[n_train + n_val:])}


def make_manifest(profile: SynthProfile, model: MorphableModel, seed: int, sensor: SimulationProfile | None,
                  chunk_size: int, n_full_frames: int) -> dict:
    """The manifest of a dataset: everything that determines its bytes (no timestamps)."""
    pose = asdict(profile.pose)
    manifest = {
        "format": "depthface-synth",
        "generator_version": GENERATOR_VERSION,
        "profile": profile.name,
        "mimics": profile.mimics,
        "seed": int(seed),
        "n_frames": profile.n_frames,
        "n_identities": profile.n_identities,
        "expressions": list(profile.expressions),
        "pose_range": pose,
        "poses_from_list": profile.poses is not None,
        "identity_scale": profile.identity_scale,
        "crop_jitter_mm": profile.crop_jitter_mm,
        "crop_size_mm": CROP_SIZE_MM,
        "crop_pixels": CROP_PIXELS,
        "intrinsics": profile.intrinsics.to_dict(),
        "sensor": None if sensor is None else as_simulation(sensor).manifest_dict(),
        "face_model": {"name": model.name, "sha256": model.sha256, "identity_dim": model.identity_dim,
                       "expression_dim": model.expression_dim},
        "chunk_size": chunk_size,
        "n_chunks": -(-profile.n_frames // chunk_size),
        "n_full_frames": min(n_full_frames, profile.n_frames),
        "split": identity_split(profile.n_identities, profile.split, seed),
    }
    return json.loads(json.dumps(manifest))  # exactly what reading manifest.json back gives


def with_sensor_camera(profile: SynthProfile, sensor: SimulationProfile | SensorProfile | None
                       ) -> tuple[SynthProfile, SimulationProfile | None]:
    """The dataset profile with the sensor's own camera, if it has one, and the sensor as a simulation."""
    if sensor is None:
        return profile, None
    sim = as_simulation(sensor)
    return (profile if sim.camera is None else replace(profile, intrinsics=sim.camera)), sim


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with tmp.open("wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def render_frame(sampler: SceneSampler, sensor: SimulationProfile | None, seed: int, index: int,
                 intrinsics: Intrinsics | None = None, full: bool = False,
                 scene: Scene | None = None) -> tuple[np.ndarray, Scene, np.ndarray]:
    """Render sample ``index`` as a full uint16 frame (mm), exactly as the generator does.

    Args:
        sampler: the dataset's scene sampler.
        sensor: its sensor profile, or ``None`` for clean frames.
        seed: the dataset seed (the sensor's random stream is ``(seed, STREAM_SENSOR, index)``).
        intrinsics: camera to render with (default: the profile's).
        full: simulate the sensor over the whole image; otherwise only in the window around the head the
            crops are cut from (identical inside it, zero outside).
        scene: ``sampler.scene(index)`` if already drawn.

    Returns:
        ``(frame (H, W) uint16, scene, face vertices in the camera frame (V, 3))``.
    """
    scene = sampler.scene(index) if scene is None else scene
    k = intrinsics or sampler.profile.intrinsics
    head, vertices = sampler.posed(scene)
    depth = render_depth(vertices, sampler.closed_triangles, k)
    if sensor is None:
        frame = depth_to_uint16(depth)
    else:
        rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_SENSOR, index]))
        frame = simulate_frame(depth, scene.rotation, scene.translation, k, rng, sensor, head_vertices=head,
                               **({"window_mm": None} if full else {}))
    return frame, scene, vertices[: len(sampler.mean)]


class _Worker:
    """Makes chunks; one per process (holds the scene sampler and its identity cache)."""

    def __init__(self, model: MorphableModel, profile: SynthProfile, seed: int, sensor: SimulationProfile | None,
                 manifest: dict) -> None:
        self.sampler = SceneSampler(model, profile, seed)
        self.sensor = sensor
        self.seed = seed
        self.manifest = manifest

    def chunk(self, c: int) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
        m = self.manifest
        lo, hi = c * m["chunk_size"], min((c + 1) * m["chunk_size"], m["n_frames"])
        fields = label_fields(m["face_model"]["identity_dim"], m["face_model"]["expression_dim"])
        arrays = {name: np.zeros((hi - lo, *shape), dtype) for name, (shape, dtype) in fields.items()}
        arrays["depth"] = np.zeros((hi - lo, CROP_PIXELS, CROP_PIXELS), np.uint16)
        frames: dict[int, np.ndarray] = {}
        scenes = self.sampler.scenes(range(lo, hi))
        quats = quaternions(scenes)
        for i, scene, q in zip(range(lo, hi), scenes, quats):
            if i < m["n_full_frames"]:  # kept whole for pictures: rendered full-frame
                frame, scene, vertices = render_frame(self.sampler, self.sensor, self.seed, i, full=True, scene=scene)
                labels = self.sampler.labels(scene, vertices, q)
                crop, crop_labels = crop_sample(frame, self.sampler.profile.intrinsics,
                                                labels["crop_centre"].astype(np.float64))
                labels.update(crop_labels)
                frames[i] = frame
            else:
                crop, labels = make_sample(self.sampler, self.sensor, self.seed, scene, q)
            arrays["depth"][i - lo] = crop
            for name, value in labels.items():
                arrays[name][i - lo] = value
        return arrays, frames


def write_chunk(root: Path, c: int, arrays: dict[str, np.ndarray], frames: dict[int, np.ndarray]) -> None:
    """Write one chunk atomically (temporary directory, then rename); full frames first."""
    (root / "frames").mkdir(exist_ok=True)
    for i, frame in frames.items():
        _atomic_save(root / "frames" / f"{i:06d}.npy", frame)
    final = root / "chunks" / f"{c:05d}"
    tmp = root / "chunks" / f".tmp-{c:05d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    sums = {}
    for name in sorted(arrays):
        path = tmp / f"{name}.npy"
        np.save(path, arrays[name])
        sums[path.name] = _sha256(path)
    (tmp / "checksums.json").write_text(json.dumps(sums, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, final)


_WORKER: _Worker | None = None


def _init_worker(model_path: str | None, profile: SynthProfile, seed: int, sensor: SimulationProfile | None, manifest: dict) -> None:
    global _WORKER  # one per worker process, by design of multiprocessing initialisers
    _WORKER = _Worker(load_face_model(model_path), profile, seed, sensor, manifest)


def _make_and_write(root: str, c: int) -> int:
    assert _WORKER is not None
    arrays, frames = _WORKER.chunk(c)
    write_chunk(Path(root), c, arrays, frames)
    return len(arrays["depth"])


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``."""
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise InputError(f"--shard {text}: need 0 <= i < N")
    return i, n


def check_existing_manifest(root: Path, manifest: dict) -> None:
    """Refuse a directory that already holds another dataset (resuming needs the same manifest)."""
    mpath = root / "manifest.json"
    if not mpath.exists():
        return
    try:
        old = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"existing manifest is unreadable ({e}); remove the directory to start over", mpath) from None
    if old != manifest:
        diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
        raise InputError(f"directory holds a different dataset (differs in {', '.join(diff)}); "
                         "use another --out or remove it", root)


def write_manifest_once(root: Path, manifest: dict) -> None:
    """Write ``root/manifest.json`` atomically unless it exists (then it was checked equal)."""
    mpath = root / "manifest.json"
    if not mpath.exists():
        tmp = root / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, mpath)


def generate(out: str | Path, profile: SynthProfile, seed: int, model: MorphableModel, sensor: SimulationProfile | None = None,
             shard: tuple[int, int] = (0, 1), workers: int = 1, chunk_size: int = DEFAULT_CHUNK,
             n_full_frames: int = DEFAULT_FULL_FRAMES, progress: bool = True, model_path: str | None = None,
             stop_after: int | None = None) -> Path:
    """Generate (or resume) a synthetic dataset, writing the chunks of this shard that are missing.

    Args:
        out: dataset directory (created; an existing one must have the same manifest).
        profile: what to generate (possibly scaled).
        seed: the dataset seed; every sample is a function of ``(seed, index)``.
        model: the face model.
        sensor: a simulation profile (target domain) or ``None`` (clean source frames). A sensor with its own
            camera (``tof_kinect_v2``: Kinect v2 intrinsics) replaces the profile's camera.
        shard: ``(i, N)``: make only chunks ``c`` with ``c % N == i``.
        workers: processes (``model_path`` lets workers load the same model).
        stop_after: stop after writing this many chunks (tests of interruption).

    Returns:
        The dataset directory.
    """
    root = Path(out)
    profile, sensor = with_sensor_camera(profile, sensor)
    manifest = make_manifest(profile, model, seed, sensor, chunk_size, n_full_frames)
    check_existing_manifest(root, manifest)
    root.mkdir(parents=True, exist_ok=True)
    (root / "chunks").mkdir(exist_ok=True)
    if profile.poses is not None:
        _atomic_save(root / "poses.npy", np.asarray(profile.poses, np.float64))
    write_manifest_once(root, manifest)
    i, n = shard
    for stale in (root / "chunks").glob(".tmp-*"):  # leftovers of an interrupted run of this shard
        if int(stale.name.split("-")[1]) % n == i:
            shutil.rmtree(stale, ignore_errors=True)
    todo = [c for c in range(manifest["n_chunks"]) if c % n == i and not (root / "chunks" / f"{c:05d}").exists()]
    if stop_after is not None:
        todo = todo[:stop_after]
    counts = [min(chunk_size, profile.n_frames - c * chunk_size) for c in todo]
    bar = tqdm(total=sum(counts), unit="frame", desc=f"synth {profile.name}", disable=not progress)
    if workers <= 1:
        worker = _Worker(model, profile, seed, sensor, manifest)
        for c in todo:
            arrays, frames = worker.chunk(c)
            write_chunk(root, c, arrays, frames)
            bar.update(len(arrays["depth"]))
    else:
        # spawn, not fork: a forked child inherits torch's/OpenMP's thread pools in an undefined state
        # and can hang in its first parallel region
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                 initargs=(model_path, profile, seed, sensor, manifest)) as pool:
            for k in pool.map(_make_and_write, [str(root)] * len(todo), todo):
                bar.update(k)
    bar.close()
    return root


def merge(out: str | Path, shards: list[str | Path]) -> Path:
    """Merge shard directories (same manifest) into ``out`` by copying their chunks and frames."""
    root = Path(out)
    manifests = [read_manifest(s) for s in shards]
    if any(m != manifests[0] for m in manifests):
        raise InputError("shards have different manifests; they are not shards of one dataset", shards[0])
    (root / "chunks").mkdir(parents=True, exist_ok=True)
    (root / "frames").mkdir(exist_ok=True)
    for s in map(Path, shards):
        for name in ("manifest.json", "poses.npy"):
            if (s / name).exists() and not (root / name).exists():
                shutil.copyfile(s / name, root / name)
        for d in sorted((s / "chunks").glob("[0-9]*")):
            if not (root / "chunks" / d.name).exists():
                shutil.copytree(d, root / "chunks" / d.name)
        for f in sorted((s / "frames").glob("[0-9]*.npy")):
            if not (root / "frames" / f.name).exists():
                shutil.copyfile(f, root / "frames" / f.name)
    return root


def read_manifest(root: str | Path) -> dict:
    path = Path(root) / "manifest.json"
    if not path.exists():
        raise InputError("not a depthface dataset (no manifest.json)", root)
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"manifest is unreadable: {e}", path) from None
    required = {"format", "n_frames", "chunk_size", "n_chunks", "split", "intrinsics", "face_model"}
    if not isinstance(m, dict) or m.get("format") not in FORMATS or not required <= set(m):
        raise InputError("manifest is not a depthface dataset manifest (missing keys)", path)
    return m


def stored_fields(manifest: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (per-sample shape, dtype) of every array a dataset stores.

    Synthetic datasets store every label of :func:`depthface.synth.scenes.label_fields` plus the crop;
    imported real datasets (``format: depthface-real``) list theirs in ``manifest["fields"]`` (no shape
    labels: a real frame has none) and add :data:`REAL_FIELDS`.
    """
    fields = label_fields(manifest["face_model"]["identity_dim"], manifest["face_model"]["expression_dim"])
    fields["depth"] = ((CROP_PIXELS, CROP_PIXELS), "uint16")
    if manifest.get("format") == REAL_FORMAT:
        fields.update(REAL_FIELDS)
        fields = {k: v for k, v in fields.items() if k in manifest["fields"]}
    return fields


def verify(root: str | Path, checksums: bool = True) -> list[str]:
    """Check a dataset's integrity: every chunk array (shape, dtype, sha256) and every full frame in
    ``frames/`` (decoded entirely). Returns one line per problem (empty list: intact)."""
    root = Path(root)
    try:
        m = read_manifest(root)
    except InputError as e:
        return [str(e)]
    problems = []
    fields = stored_fields(m)
    for c in range(m["n_chunks"]):
        d = root / "chunks" / f"{c:05d}"
        n = min(m["chunk_size"], m["n_frames"] - c * m["chunk_size"])
        if not d.is_dir():
            problems.append(f"{d}: chunk missing (samples {c * m['chunk_size']}-{c * m['chunk_size'] + n - 1})")
            continue
        try:
            sums = json.loads((d / "checksums.json").read_text())
        except (OSError, json.JSONDecodeError):
            problems.append(f"{d / 'checksums.json'}: missing or unreadable")
            sums = None
        for name, (shape, dtype) in fields.items():
            path = d / f"{name}.npy"
            problem = file_problem(path, max_bytes=1 << 40)
            if problem is not None:
                problems.append(f"{path}: {problem}")
                continue
            try:
                arr = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as e:
                problems.append(f"{path}: unreadable ({' '.join(str(e).split())[:80]})")
                continue
            if arr.shape != (n, *shape) or arr.dtype != np.dtype(dtype):
                problems.append(f"{path}: shape {arr.shape} {arr.dtype}, expected {(n, *shape)} {dtype}")
            elif checksums and sums is not None and sums.get(path.name) != _sha256(path):
                problems.append(f"{path}: checksum mismatch (corrupt)")
    extra = [p.name for p in (root / "chunks").glob("*") if not (p.name.isdigit() and int(p.name) < m["n_chunks"])]
    problems += [f"{root / 'chunks' / e}: unexpected entry (leftover of an interrupted run?)" for e in sorted(extra)]
    k = m["intrinsics"]
    for i in range(m.get("n_full_frames", 0)):
        path = root / "frames" / f"{i:06d}.npy"
        if not os.path.lexists(path):
            problems.append(f"{path}: full frame missing")
            continue
        problem = file_problem(path)
        if problem is not None:
            problems.append(f"{path}: {problem}")
            continue
        try:  # decode it entirely: a truncated or corrupt frame fails here
            arr = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError/... for corrupt files
            problems.append(f"{path}: unreadable full frame ({type(e).__name__}: {' '.join(str(e).split())[:80]})")
            continue
        if arr.shape != (k["height"], k["width"]) or arr.dtype != np.uint16:
            problems.append(f"{path}: full frame {arr.shape} {arr.dtype}, expected ({k['height']}, {k['width']}) uint16")
    return problems


class ChunkedArrays:
    """Memory-mapped, lazily opened read access to a dataset's arrays (never all in RAM)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.n = self.manifest["n_frames"]
        self.chunk_size = self.manifest["chunk_size"]
        self.fields = stored_fields(self.manifest)
        self._open: dict[tuple[int, str], np.ndarray] = {}

    def array(self, c: int, name: str) -> np.ndarray:
        key = (c, name)
        if key not in self._open:
            path = self.root / "chunks" / f"{c:05d}" / f"{name}.npy"
            n = min(self.chunk_size, self.n - c * self.chunk_size)
            if name not in self.fields:
                raise InputError(f"this dataset has no {name!r} array (an imported real dataset has pose labels only)",
                                 self.root)
            shape, dtype = self.fields[name]
            try:
                arr = np.load(path, mmap_mode="r")
            except FileNotFoundError:
                raise InputError(f"chunk file missing (run `depthface data verify {self.root}`)", path) from None
            except (OSError, ValueError) as e:
                raise InputError(f"corrupt chunk file ({' '.join(str(e).split())[:80]})", path) from None
            if arr.shape != (n, *shape) or arr.dtype != np.dtype(dtype):
                raise InputError(f"truncated or corrupt chunk file: shape {arr.shape} {arr.dtype}, expected "
                                 f"{(n, *shape)} {dtype}", path)
            self._open[key] = arr
        return self._open[key]

    def get(self, index: int, name: str) -> np.ndarray:
        c, o = divmod(index, self.chunk_size)
        return np.array(self.array(c, name)[o])

    def column(self, name: str) -> np.ndarray:
        """A whole label column, ``(N, ...)`` (small fields only: loads into RAM)."""
        return np.concatenate([np.asarray(self.array(c, name)) for c in range(self.manifest["n_chunks"])])

    def indices(self, split: str | None) -> np.ndarray:
        """Sample indices whose identity belongs to ``split`` (``None``: all).

        An imported real dataset is one part of a protocol (e.g. Biwi Group-1's training subjects): every
        split name selects all its frames that have a crop (``status == 0``).
        """
        if self.manifest["format"] == REAL_FORMAT:
            return np.flatnonzero(self.column("status") == 0)
        if split is None:
            return np.arange(self.n)
        if split not in self.manifest["split"]:
            raise InputError(f"unknown split {split!r}; choose one of {sorted(self.manifest['split'])}", self.root)
        ids = self.column("identity_id")
        return np.flatnonzero(np.isin(ids, self.manifest["split"][split]))

    def __getstate__(self) -> dict:  # memory maps are reopened in each DataLoader worker
        return {**self.__dict__, "_open": {}}


def iter_full_frames(root: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    for path in sorted((Path(root) / "frames").glob("[0-9]*.npy")):
        yield int(path.stem), np.load(path)
