"""Network sizes, in one config object (section 1.1 of the supplement).

The supplement gives the layer pattern but not the channel widths. Our ``paper`` widths double every
stride-2 block up to 512 (``32, 64, 64, 128, 128, 256, 256, 512, 512, 512`` for layers 1-10, then a
5x5 layer to the 512-d feature): about 0.97 GMAC per ``F`` pass at 160x160, i.e. pose + shape about
4 GFLOP per frame. ``small`` scales every width by 1/4 (and the MLPs accordingly) for tests and the
CPU demo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

PAPER_WIDTHS = (32, 64, 64, 128, 128, 256, 256, 512, 512, 512)


@dataclass(frozen=True)
class NetConfig:
    """Sizes of F, R, G, D and the pose MLP.

    Attributes:
        widths: output channels of F's layers 1-10 (G mirrors them).
        feature_dim: F's output (layer 11), 512 in the paper.
        pose_hidden: hidden width of the pose MLP (512 -> 256 -> 7).
        shape_hidden: hidden width of R and D_reg (-> 1024 -> 3V).
        noise_dim: length of the noise vector z fed to G (and R, see ``r_input``).
        domain_dim: length of the one-hot vector (we encode the input's domain: source, target).
        n_vertices: V, the regressed vertices of the loaded face model (3V outputs).
        negative_slope: of every leaky ReLU.
        r_input: ``"paper"``: R takes [F(x), z, one-hot] as the supplement says (z = 0 and the source
            one-hot at inference); ``"feature"``: R takes F(x) only.
        rotation: the pose MLP's rotation output: ``"quaternion"`` (the paper: 4 numbers, normalised) or
            ``"6d"`` (beyond the paper: the continuous 6D representation of Zhou et al. 2019, two matrix
            columns orthonormalised; no sign ambiguity, no discontinuity).
        shape_output: R's (and D_reg's) last layer: ``"vertices"`` (the paper: 3V displacements) or
            ``"coefficients"`` (beyond the paper: ``n_coefficients`` face-model coefficients, identity then
            expression, mapped to the 3V displacements by the model's fixed linear basis; the output stays
            a face of the model and the head is ``3V / n_coefficients`` times smaller).
        n_coefficients: ``Ki + Ke`` of the face model, with ``shape_output="coefficients"``.
    """

    widths: tuple[int, ...] = PAPER_WIDTHS
    feature_dim: int = 512
    pose_hidden: int = 256
    shape_hidden: int = 1024
    noise_dim: int = 64
    domain_dim: int = 2
    n_vertices: int = 9409
    negative_slope: float = 0.2
    image_size: int = 160
    r_input: str = "paper"
    rotation: str = "quaternion"
    shape_output: str = "vertices"
    n_coefficients: int = 0

    def __post_init__(self) -> None:
        if self.shape_output not in ("vertices", "coefficients"):
            raise ValueError(f"shape_output must be 'vertices' or 'coefficients', got {self.shape_output!r}")
        if self.shape_output == "coefficients" and self.n_coefficients < 1:
            raise ValueError("shape_output='coefficients' needs n_coefficients >= 1 (the face model's Ki + Ke)")
        if self.r_input not in ("paper", "feature"):
            raise ValueError(f"r_input must be 'paper' or 'feature', got {self.r_input!r}")
        if self.rotation not in ("quaternion", "6d"):
            raise ValueError(f"rotation must be 'quaternion' or '6d', got {self.rotation!r}")

    @classmethod
    def preset(cls, name: str, n_vertices: int = 9409, **options) -> "NetConfig":
        """The ``paper`` / ``small`` / ``tiny`` sizes; ``options`` set other fields (e.g. ``rotation="6d"``)."""
        if name == "paper":
            return cls(n_vertices=n_vertices, **options)
        if name == "small":
            return cls(widths=tuple(max(4, w // 4) for w in PAPER_WIDTHS), feature_dim=128, pose_hidden=64,
                       shape_hidden=256, noise_dim=16, n_vertices=n_vertices, **options)
        if name == "tiny":
            return cls(widths=tuple(max(4, w // 8) for w in PAPER_WIDTHS), feature_dim=64, pose_hidden=32,
                       shape_hidden=64, noise_dim=8, n_vertices=n_vertices, **options)
        raise ValueError(f"unknown network preset {name!r}; choose paper, small or tiny")

    def with_vertices(self, n: int) -> "NetConfig":
        return replace(self, n_vertices=n)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)
