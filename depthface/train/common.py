"""Training infrastructure shared by the pose and shape trainers.

Checkpoints are written atomically (temporary file + rename) at the end of every epoch and loaded with
``weights_only=True``. Each epoch's randomness (data order, noise) comes from generators seeded by
``(seed, epoch)`` alone, so a run interrupted and resumed from its last checkpoint ends with the same
weights as an uninterrupted run. Runs on CPU or CUDA, and under ``torchrun`` with
DistributedDataParallel (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset

from depthface.errors import DepthfaceError, InputError
from depthface.models.normalize import network_input  # noqa: F401  (re-exported for the trainers)

CHECKPOINT = "checkpoint.pt"


@dataclass
class Dist:
    """The process's place in a (possibly single-process) distributed run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE > 1``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(device: str | None) -> str:
    """``auto`` -> cuda when available else cpu; a named device is checked (one-line error when it
    does not exist here, e.g. ``cuda:7`` on a machine with one GPU or none)."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DepthfaceError(f"--device {device!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DepthfaceError(f"--device {device} asked for, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DepthfaceError(f"--device {device} asked for, but this machine has {torch.cuda.device_count()} "
                                 "CUDA device(s)")
    elif dev.type not in ("cpu", "mps"):
        raise DepthfaceError(f"--device {device!r}: use cpu, cuda, cuda:N or auto")
    return device


def choose_preset(preset: str | None, device: str | None, run: str | Path | None = None) -> tuple[str, str]:
    """The network size of a training run when ``--preset`` is not given, and a one-line note saying why.

    An explicit ``preset`` wins (empty note). Otherwise a run directory that already holds a checkpoint
    keeps the preset it was started with (so a resumed run matches); else ``paper`` (the paper's size)
    where CUDA is used, and ``small`` on a CPU, where the paper's size trains at about 20 images/s
    (README, Speed) and its schedule would take days.

    Args:
        preset: ``paper``, ``small``, ``tiny`` or ``None`` (choose).
        device: the ``--device`` value (``auto``, ``cpu``, ``cuda...``).
        run: the run directory (its ``checkpoint.pt`` is read when present).

    Returns:
        ``(preset, note)``.
    """
    if preset is not None:
        return preset, ""
    if run is not None and (Path(run) / CHECKPOINT).exists():
        cfg = load_checkpoint(Path(run) / CHECKPOINT).get("train_config") or {}
        if cfg.get("preset"):
            return str(cfg["preset"]), f"--preset {cfg['preset']} (the preset of the run being resumed in {run})"
    if pick_device(device).startswith("cuda"):
        return "paper", "--preset paper (the paper's network size; CUDA is available)"
    return "small", ("--preset small: no CUDA here, and the paper's network size trains at about 20 images/s on "
                     "a CPU; pass --preset paper to insist")


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch (``(seed, epoch)`` only), sharded across ranks when distributed."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True) -> None:
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle

    def __iter__(self):
        if self.shuffle:  # the trainers fold the epoch into ``seed``; the 0 keeps the orders of earlier runs
            order = np.random.default_rng([self.seed, 0]).permutation(self.n)
        else:
            order = np.arange(self.n)
        per = -(-self.n // self.world)
        order = np.resize(order, per * self.world) if self.world > 1 else order
        return iter(order[self.rank::self.world].tolist())

    def __len__(self) -> int:
        return -(-self.n // self.world)


def make_loader(ds: Dataset, batch_size: int, sampler: Sampler | None, workers: int = 0, drop_last: bool = True) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
                      persistent_workers=workers > 0, pin_memory=False)


def save_checkpoint(run: Path, state: dict[str, Any]) -> Path:
    """Write ``run/checkpoint.pt`` atomically (and ``run/epoch_XXX.pt`` is not kept: one file, resumable)."""
    run.mkdir(parents=True, exist_ok=True)
    path = run / CHECKPOINT
    tmp = run / f".{CHECKPOINT}.tmp-{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def keep_epoch(run: Path, epoch: int) -> Path:
    """Copy ``run/checkpoint.pt`` to ``run/epochs/epoch_XXX.pt`` (``--keep-epochs``: learning curves)."""
    (run / "epochs").mkdir(exist_ok=True)
    path = run / "epochs" / f"epoch_{epoch:03d}.pt"
    shutil.copyfile(run / CHECKPOINT, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint (file or run directory) with ``weights_only=True``; one-line errors."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise InputError("checkpoint not found (train first, or pass the run directory)", path)
    if not path.is_file():
        raise InputError("checkpoint is not a regular file", path)
    with open(path, "rb") as f:
        head = f.read(64)
    if path.suffix.lower() == ".onnx" or (head[:1] == b"\x08" and b"pytorch" in head.lower()
                                          and not head.startswith(b"PK")):
        raise InputError("this is an ONNX model, use --backend onnx (or pass the PyTorch run directory)", path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputError(f"checkpoint is corrupt or not a depthface checkpoint ({type(e).__name__})", path) from None
    if not isinstance(ck, dict):
        raise InputError(f"not a depthface checkpoint (holds a {type(ck).__name__}, not a dict)", path)
    return ck


def load_network(ckpt: str | Path, kind: str, factory, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """A trained network of ``kind`` (``"pose"`` / ``"shape"``) built by ``factory(NetConfig)``, in eval mode,
    and its checkpoint dict; one-line errors for a missing, corrupt or wrong-kind checkpoint."""
    from depthface.models.config import NetConfig

    ck = load_checkpoint(ckpt)
    if ck.get("kind") != kind:
        raise InputError(f"not a {kind} checkpoint (kind={ck.get('kind')!r})", ckpt)
    cfg = ck.get("net_config")
    if not isinstance(cfg, dict) or not isinstance(ck.get("model"), dict):
        raise InputError("checkpoint lacks its network configuration or weights (net_config, model)", ckpt)
    try:
        net = factory(NetConfig(**{**cfg, "widths": tuple(cfg["widths"])}))
    except Exception as e:  # noqa: BLE001 - a damaged config fails in many ways (KeyError, TypeError, ...)
        raise InputError(f"checkpoint's net_config is invalid ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:80]})", ckpt) from None
    inference_only = tuple(ck.get("inference_only", ()))  # e.g. ("F.", "R."): a compact release checkpoint
    try:
        missing, _ = net.load_state_dict(ck["model"], strict=not inference_only)
    except Exception as e:  # noqa: BLE001 - RuntimeError for shapes, TypeError/KeyError for damaged dicts
        raise InputError(f"weights do not fit the network ({' '.join(str(e).split())[:100]})", ckpt) from None
    needed = [k for k in missing if k.startswith(inference_only)]
    if needed:
        raise InputError(f"weights do not fit the network (missing {needed[0]})", ckpt)
    return net.to(device).eval(), ck


def compact_checkpoint(ck: dict[str, Any], modules: tuple[str, ...], half: bool = True) -> dict[str, Any]:
    """A release checkpoint: only the inference ``modules`` (state-dict prefixes such as ``"F."``, ``"R."``) of
    a trained checkpoint, floating-point tensors in float16 when ``half`` (loading casts them back to float32),
    no optimiser state; the configs, history and face-model record kept. :func:`load_network` reads it."""
    model = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ck["model"].items()
             if k.startswith(modules)}
    keep = {k: v for k, v in ck.items() if k not in ("model", "optimizer", "optimizers")}
    return {**keep, "model": model, "inference_only": list(modules), "half": half}


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=float) + "\n")
    os.replace(tmp, path)


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed torch's global RNG for this epoch (from seed and epoch only)."""
    torch.manual_seed(seed * 100003 + epoch)


def state_dict_of(module: torch.nn.Module) -> dict[str, Tensor]:
    """The state dict without a DDP wrapper's ``module.`` prefix."""
    m = module.module if hasattr(module, "module") else module
    return m.state_dict()


def labelled_sources(source: str | Path | list | tuple, limit: int = 0) -> Dataset:
    """The labelled training set (``train`` split): one dataset, or several concatenated (e.g. clean +
    simulated-sensor frames), each cut to its first ``limit`` training frames when ``limit > 0``."""
    from depthface.synth.datasets import SourceDataset

    roots = list(source) if isinstance(source, (list, tuple)) else [source]
    parts: list[Dataset] = []
    for root in roots:
        ds = SourceDataset(root, "train")
        parts.append(Subset(ds, range(min(limit, len(ds)))) if limit > 0 else ds)
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


#: the modules each kind of network needs at inference (what a release checkpoint keeps)
INFERENCE_MODULES: dict[str, tuple[str, ...]] = {"pose": ("F.", "head."), "shape": ("F.", "R.")}


def write_release_checkpoint(ckpt: str | Path, kind: str, out: str | Path, half: bool = True) -> Path:
    """Write the compact release checkpoint of a trained ``kind`` network (:func:`compact_checkpoint`) to ``out``
    (a file path) atomically; returns it."""
    if kind not in INFERENCE_MODULES:
        raise DepthfaceError(f"kind must be pose or shape, got {kind!r}")
    ck = load_checkpoint(ckpt)
    if ck.get("kind") != kind:
        raise InputError(f"not a {kind} checkpoint (kind={ck.get('kind')!r})", ckpt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    torch.save(compact_checkpoint(ck, INFERENCE_MODULES[kind], half), tmp)
    os.replace(tmp, out)
    return out


@contextmanager
def frozen_bn_statistics(module: torch.nn.Module, frozen: bool = True) -> Iterator[None]:
    """Within the block the batch-norm layers of ``module`` keep their running statistics (momentum 0);
    in train mode they still normalise with each batch's own statistics, and gradients flow as usual.
    ``frozen=False`` changes nothing (so callers can pass their option straight through)."""
    layers = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)] if frozen else []
    saved = [m.momentum for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(layers, saved):
            m.momentum = mom
