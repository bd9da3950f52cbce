"""What the benchmark scripts share: the machine record, a stage logger and the JSON report.

The scripts run as ``python benchmarks/bench_*.py``, so this folder is on ``sys.path`` and they
``import _common``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path


def python_and_processor() -> dict:
    """``{"python": ..., "processor": ...}``: the short machine record."""
    return {"python": platform.python_version(), "processor": platform.processor() or platform.machine()}


def machine_info(cores: int) -> dict:
    """The full machine record of the speed benchmarks: CPU model, cores, torch / onnxruntime versions, threads,
    CUDA device and the load average now (``load_before``)."""
    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": cores, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_before": round(os.getloadavg()[0], 2)}


class StageLog:
    """``log(msg)`` prints ``[  12 s] msg`` to stderr, the seconds since the log was made; ``elapsed()`` returns them."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, msg: str) -> None:
        print(f"  [{self.elapsed():5.0f} s] {msg}", file=sys.stderr, flush=True)


def command_line() -> str:
    """How this benchmark was started: ``python benchmarks/bench_x.py --args``."""
    return " ".join([Path(sys.executable).name, *sys.argv])


def write_report(path: Path, report: dict) -> None:
    """Write ``report`` as indented JSON to ``path`` (its folder made) and say so on stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
