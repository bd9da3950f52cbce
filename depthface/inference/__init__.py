"""The user's product: depth frame(s) in, head pose + face mesh + pictures out.

:class:`Reconstructor` is the Python API (localise, crop, pose network, re-crop, shape network, optional
model fit, confidence and face verdict); ``run`` is ``depthface predict`` (files in, one row per frame),
``tracking`` is ``depthface track`` (sequences, filters, RealSense), ``io`` reads depth files and
``pictures`` draws and writes the per-frame overlays. It uses models, data and the checkpoint loaders of
:mod:`depthface.train`; :mod:`depthface.evaluation` measures it."""

from depthface.inference.reconstructor import Reconstructor, Result

__all__ = ["Reconstructor", "Result"]
