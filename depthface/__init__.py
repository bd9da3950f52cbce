"""depthface: 3D face shape and head pose from a single depth image, with domain adaptation.

Packages, in the one direction imports may point (nothing imports leftward)::

    cli -> train, evaluation -> models -> synth, data -> facemodel -> geometry

``depthface.errors`` is shared by all of them. Conventions (units, frames, rotations) are
defined once in :mod:`depthface.geometry.conventions` and in ``docs/conventions.md``.
"""

__version__ = "0.1.0"
