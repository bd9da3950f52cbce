"""The release weights that ship inside the package (``depthface/models/weights/``): where they are.

``pose.pt`` (DAPoseNet) and ``shape.pt`` (DASHapeNet's ``F`` and ``R``) are compact checkpoints
(``depthface.train.common.compact_checkpoint``: float16, inference modules only). How they were trained,
with what data and seed, their sha256 and their measured accuracy: ``docs/models.md``. ``confidence.json``
is the release pose network's confidence calibration (``depthface.inference.confidence``).
"""

from __future__ import annotations

from pathlib import Path

from depthface.errors import DepthfaceError

WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"
RELEASE_FILES: dict[str, str] = {"pose": "pose.pt", "shape": "shape.pt", "confidence": "confidence.json"}


def release_checkpoint(kind: str) -> Path:
    """The shipped file of ``kind`` (``"pose"``, ``"shape"`` or ``"confidence"``)."""
    if kind not in RELEASE_FILES:
        raise DepthfaceError(f"no release weights of kind {kind!r}; choose {', '.join(RELEASE_FILES)}")
    path = WEIGHTS_DIR / RELEASE_FILES[kind]
    if not path.is_file():
        raise DepthfaceError(f"the release {kind} weights are missing from this installation", path)
    return path
