"""ONNX export of the inference graphs, and ONNX Runtime stand-ins for the torch modules.

Two graphs are exported, both taking the *normalised* position image (see
:mod:`depthface.models.normalize`) as input ``position`` ``(B, 3, 160, 160)`` float32:

* ``kind="pose"``: :class:`~depthface.models.networks.DAPoseNet` -> ``quaternion`` ``(B, 4)`` (unit,
  w first) and ``translation_rel_mm`` ``(B, 3)`` (head centre minus crop centre, mm);
* ``kind="shape"``: DASHapeNet's ``F`` + ``R`` (what :meth:`DASHapeNet.forward` computes; ``G`` and ``D``
  are training-only) -> ``displacements`` ``(B, V, 3)`` mm.

Export always uses eval mode (batch norm folded into the convolutions by the exporter) and checks,
before the file is put in place, that ONNX Runtime reproduces PyTorch's outputs on a random batch
(:data:`VERIFY_RTOL`, relative to each output's largest magnitude); a mismatch raises
:class:`~depthface.errors.DepthfaceError` and leaves no file behind.

We use the TorchScript-based exporter (``dynamo=False``): the torch.export-based one needs the
``onnxscript`` package, which is not a dependency. :class:`OnnxPoseNet` and :class:`OnnxShapeNet` are
called like the torch modules (torch tensor in, torch tensors out; ``eval()`` and ``to()`` accepted), so
the prediction and evaluation code can use either. By default they run on ONNX Runtime's process-wide
thread pool: a pose and a shape session called one after the other, each with its own (spinning) pool,
took about twice the sum of their separate times on 2 cores.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from depthface.errors import DepthfaceError
from depthface.models.config import NetConfig
from depthface.models.networks import DAPoseNet, DASHapeNet

#: largest allowed ``max|onnx - torch| / max|torch|`` per output when verifying an export
VERIFY_RTOL = 1e-4

INPUT_NAME = "position"
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "pose": ("quaternion", "translation_rel_mm"),
    "shape": ("displacements",),
}
_MODULE_TYPES: dict[str, type[nn.Module]] = {"pose": DAPoseNet, "shape": DASHapeNet}


class ShapeInference(nn.Module):
    """DASHapeNet's inference path ``R([F(x), 0, one-hot(source)])`` as its own module.

    The same computation as :meth:`DASHapeNet.forward`, with the constant ``[z = 0, one-hot]`` tail kept
    in a buffer, so the exported graph is a plain ``Concat`` instead of the in-place indexing of
    :meth:`DASHapeNet.condition` (which exports as a ScatterND subgraph).
    """

    def __init__(self, net: DASHapeNet) -> None:
        super().__init__()
        self.F, self.R = net.F, net.R
        cfg = net.cfg
        tail = torch.zeros(1, cfg.noise_dim + cfg.domain_dim) if cfg.r_input == "paper" else torch.zeros(1, 0)
        if cfg.r_input == "paper":
            tail[0, cfg.noise_dim] = 1.0  # one-hot of the source domain (index 0)
        self.register_buffer("tail", tail.to(next(net.F.parameters()).dtype), persistent=False)
        self.train(net.training)  # the exporter restores this mode recursively, into net's F and R

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, 160, 160)`` -> ``(B, V, 3)`` mm."""
        f = self.F(x)
        if self.tail.shape[1]:
            f = torch.cat((f, self.tail.expand(f.shape[0], -1)), dim=1)
        return self.R(f)


def inference_module(net: nn.Module, kind: str) -> nn.Module:
    """The module whose graph is exported for ``kind`` (checks that ``net`` is the right network)."""
    if kind not in _MODULE_TYPES:
        raise DepthfaceError(f"unknown export kind {kind!r}; choose 'pose' or 'shape'")
    if not isinstance(net, _MODULE_TYPES[kind]):
        raise DepthfaceError(f"kind={kind!r} exports a {_MODULE_TYPES[kind].__name__}, got {type(net).__name__}")
    return ShapeInference(net) if kind == "shape" else net


def export_onnx(net: nn.Module, path: str | Path, kind: str, opset: int = 17, dynamic_batch: bool = True,
                verify_batch: int = 2) -> Path:
    """Export the inference graph of a DAPoseNet (``kind="pose"``) or DASHapeNet (``kind="shape"``).

    Args:
        net: the network (any device; exported from a float32 CPU copy, in eval mode; ``net`` itself is
            left as it was).
        path: the ``.onnx`` file to write (parent folders are created; written atomically).
        kind: ``"pose"`` or ``"shape"``.
        opset: ONNX opset.
        dynamic_batch: a symbolic batch dimension (otherwise the graph is fixed to ``verify_batch``).
        verify_batch: batch size of the random input used to trace and verify.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        DepthfaceError: wrong network for ``kind``, export failure, or ONNX Runtime's outputs differ from
            PyTorch's by more than :data:`VERIFY_RTOL` (relative).
    """
    path = Path(path)
    inference_module(net, kind)  # checks the type before copying
    reference = _cpu_eval_copy(net)  # verified against the network's own forward
    module = inference_module(reference, kind).eval()
    size = net.cfg.image_size
    x = _random_input(verify_batch, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _torch_export(module, x, tmp, kind, opset, dynamic_batch)
        _add_metadata(tmp, kind, net.cfg)
        batches = (verify_batch, 1) if dynamic_batch and verify_batch != 1 else (verify_batch,)
        for b in batches:
            verify_export(reference, tmp, kind, _random_input(b, size, seed=b), label=path)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _cpu_eval_copy(module: nn.Module) -> nn.Module:
    """A float32 CPU copy in eval mode with gradients off (the caller's module is untouched)."""
    import copy

    m = copy.deepcopy(module).to("cpu", torch.float32).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def _random_input(batch: int, size: int, seed: int = 0) -> Tensor:
    """A reproducible normalised-looking input in ``[-1, 1]``."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1


def _torch_export(module: nn.Module, x: Tensor, path: Path, kind: str, opset: int, dynamic_batch: bool) -> None:
    """``torch.onnx.export`` with the TorchScript exporter; failures become one-line DepthfaceErrors."""
    names = OUTPUT_NAMES[kind]
    axes = {n: {0: "batch"} for n in (INPUT_NAME, *names)} if dynamic_batch else None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(module, (x,), str(path), input_names=[INPUT_NAME], output_names=list(names),
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
                              training=torch.onnx.TrainingMode.EVAL, dynamo=False)
    except Exception as e:  # the exporter raises many types
        raise DepthfaceError(f"ONNX export of the {kind} network failed ({type(e).__name__}: {e})", path) from None


def _add_metadata(path: Path, kind: str, cfg: NetConfig) -> None:
    """Record ``kind`` and the network config in the model's metadata (read back by the wrappers)."""
    import onnx

    model = onnx.load(str(path))
    for key, value in (("depthface_kind", kind), ("depthface_net_config", json.dumps(cfg.to_dict()))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    """``max|got - ref| / max|ref|`` (``max|got - ref|`` when ``ref`` is all zero)."""
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    err = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()) if ref.size else 0.0
    return err / scale if scale > 0 else err


@torch.no_grad()
def verify_export(module: nn.Module, path: str | Path, kind: str, x: Tensor, rtol: float = VERIFY_RTOL,
                  label: str | Path | None = None) -> dict[str, float]:
    """Run ``module`` (eval) and the ONNX file on ``x``; raise DepthfaceError if any output differs by more
    than ``rtol`` (see :func:`relative_error`). Returns the relative error per output name."""
    ref = module(x)
    ref = (ref,) if isinstance(ref, Tensor) else tuple(ref)
    sess = open_session(path, threads=1)
    got = sess.run(list(OUTPUT_NAMES[kind]), {INPUT_NAME: x.numpy()})
    errors = {}
    for name, g, r in zip(OUTPUT_NAMES[kind], got, ref):
        r = r.numpy()
        if g.shape != r.shape:
            raise DepthfaceError(f"exported {kind} graph gives {name} of shape {g.shape}, PyTorch {r.shape}",
                                 label or path)
        errors[name] = relative_error(g, r)
        if not errors[name] <= rtol:
            raise DepthfaceError(f"exported {kind} graph differs from PyTorch on {name} (relative error "
                                 f"{errors[name]:.2e} > {rtol:.0e}, batch {x.shape[0]})", label or path)
    return errors


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_providers() -> list[str]:
    """CUDA first when onnxruntime has it, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


#: ONNX Runtime's process-wide intra-op pool, once asked for: None (not yet), 0 (not available), -1
#: (created elsewhere, size unknown) or its thread count
_shared_pool_threads: int | None = None


def shared_pool(threads: int) -> bool:
    """Create ONNX Runtime's process-wide intra-op thread pool (``threads`` threads) if not done yet.

    Returns whether it exists. ORT fixes its size on creation, and from then on *every* session in the
    process must use it (``use_per_session_threads = False``), whatever thread count it asks for.
    """
    global _shared_pool_threads
    import onnxruntime as ort

    if _shared_pool_threads is None:
        try:
            ort.set_global_thread_pool_sizes(threads, 1)
            _shared_pool_threads = threads
        except Exception as e:  # another part of the process created it first
            _shared_pool_threads = -1 if "already" in str(e) else 0
    return _shared_pool_threads != 0


def shared_pool_exists() -> bool:
    """Whether :func:`shared_pool` created (or found) ORT's process-wide pool."""
    return bool(_shared_pool_threads)


def open_session(path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None,
                 optimize: bool = True, spinning: bool = True, shared_threads: bool = False):
    """An ``onnxruntime.InferenceSession`` for ``path``.

    Args:
        threads: intra-op threads (default: the cores this process may use); inter-op 1, sequential.
            Ignored once the process-wide pool exists (see ``shared_threads``).
        providers: execution providers (default :func:`default_providers`).
        optimize: graph optimisations ``ORT_ENABLE_ALL`` (else ``ORT_DISABLE_ALL``).
        spinning: let idle intra-op threads of a per-session pool busy-wait for the next op (ORT's
            default). Turning it off roughly doubled the batch-1 latency on 2 cores.
        shared_threads: run on ORT's process-wide thread pool (created with ``threads`` threads on first
            use, see :func:`shared_pool`) instead of a pool per session. Sessions called one after the
            other (pose then shape) should share it: with their own spinning pools they slow each other
            down (about 2x for the paper-size pair on 2 cores). Once the shared pool exists, every later
            session uses it whatever this flag says (an ONNX Runtime rule).

    Raises:
        DepthfaceError: the file is missing or is not a loadable ONNX model (one line naming it).
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise DepthfaceError("ONNX model not found (export it first)", path)
    threads = threads or cpu_count()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only
    if (shared_threads and shared_pool(threads)) or shared_pool_exists():
        opts.use_per_session_threads = False
    else:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers or default_providers()))
    except Exception as e:  # onnxruntime raises its own (pybind) types with multi-line messages
        raise DepthfaceError(f"not a loadable ONNX model ({type(e).__name__}); re-export it", path) from None


class _OnnxNet:
    """An ONNX Runtime session called like a torch module: tensor in, tensors out (on the input's device)."""

    kind = ""

    def __init__(self, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None,
                 optimize: bool = True, spinning: bool = True, shared_threads: bool = True) -> None:
        """See :func:`open_session` for the arguments (here ``shared_threads`` defaults to True, so a
        pose and a shape wrapper used together share one pool); raises DepthfaceError for a missing,
        corrupt or wrong-kind file."""
        self.path = Path(path)
        self.session = open_session(self.path, threads, providers, optimize, spinning, shared_threads)
        self._check_signature()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.cfg: NetConfig | None = _config_from(meta.get("depthface_net_config"))
        self.training = False

    def _check_signature(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or outputs != list(OUTPUT_NAMES[self.kind]):
            raise DepthfaceError(f"not a depthface {self.kind} graph (inputs {inputs}, outputs {outputs}); "
                                 f"export it with kind={self.kind!r}", self.path)

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def eval(self) -> "_OnnxNet":
        """No-op (the graph is the eval-mode network); returns self like ``nn.Module.eval``."""
        return self

    def to(self, *args, **kwargs) -> "_OnnxNet":
        """No-op (outputs follow the input's device); returns self like ``nn.Module.to``."""
        return self

    def _run(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise DepthfaceError(f"{self.kind} network input must be (B, 3, H, W), got {tuple(x.shape)}", self.path)
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        out = self.session.run(list(OUTPUT_NAMES[self.kind]), {INPUT_NAME: arr})
        return [torch.from_numpy(o).to(x.device) for o in out]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, providers={self.providers})"


class OnnxPoseNet(_OnnxNet):
    """ONNX Runtime stand-in for :class:`DAPoseNet`: ``net(x) -> (q (B, 4), t_rel (B, 3) mm)``."""

    kind = "pose"

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        q, t = self._run(x)
        return q, t

    forward = __call__


class OnnxShapeNet(_OnnxNet):
    """ONNX Runtime stand-in for :meth:`DASHapeNet.forward`: ``net(x) -> displacements (B, V, 3) mm``."""

    kind = "shape"

    def __call__(self, x: Tensor) -> Tensor:
        return self._run(x)[0]

    forward = __call__


def _config_from(text: str | None) -> NetConfig | None:
    if not text:
        return None
    d = json.loads(text)
    return NetConfig(**{**d, "widths": tuple(d["widths"])})
