"""depthface: 3D face shape and head pose from a single depth image, with domain adaptation.

Packages, in the one direction imports may point (a package imports only packages to its right;
``tests/test_layering.py`` reads this line)::

    cli -> evaluation -> inference -> train -> models -> synth -> data -> facemodel -> geometry

``depthface.errors`` and ``depthface.files`` are shared by all of them. docs/architecture.md says what
each package owns and how a depth frame becomes a mesh. Conventions (units, frames, rotations) are
defined once in :mod:`depthface.geometry.conventions` and in ``docs/conventions.md``.
"""

__version__ = "0.1.0"
