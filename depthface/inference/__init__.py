"""The user's product: depth frame(s) in, head pose + face mesh + pictures out.

:class:`Reconstructor` is the Python API; ``depthface predict`` is the command. This package sits at
the top of the architecture beside the CLI (it uses models, data and the checkpoint loaders)."""

from depthface.inference.reconstructor import Reconstructor, Result

__all__ = ["Reconstructor", "Result"]
