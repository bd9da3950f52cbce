"""DAPoseNet and DASHapeNet's modules F, R, G, D (section 1.1 of the supplement).

All modules take and return batched tensors; sizes come from :class:`NetConfig`. Inputs are
*normalised* position images (see :mod:`depthface.models.normalize`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depthface.geometry.rotations import matrix_to_quaternion, rotation_6d_to_matrix
from depthface.models.config import NetConfig


def _block(cin: int, cout: int, k: int, s: int, slope: float) -> list[nn.Module]:
    pad = 1  # 4x4/2 halves the size, 3x3/1 keeps it
    return [nn.Conv2d(cin, cout, k, s, pad, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(slope, inplace=True)]


class FeatureExtractor(nn.Module):
    """``F``: 11 convolutions, ``(B, 3, 160, 160)`` -> ``(B, feature_dim)``.

    Layers 1-10 alternate 4x4 stride 2 and 3x3 stride 1, each followed by batch norm and leaky ReLU;
    layer 11 is a 5x5 stride-1 convolution over the remaining 5x5 map, followed by leaky ReLU only.
    """

    def __init__(self, cfg: NetConfig, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(cfg.widths):
            k, s = (4, 2) if i % 2 == 0 else (3, 1)
            layers += _block(cin, w, k, s, cfg.negative_slope)
            cin = w
        layers += [nn.Conv2d(cin, cfg.feature_dim, 5, 1, 0), nn.LeakyReLU(cfg.negative_slope, inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, 160, 160)`` -> ``(B, feature_dim)``."""
        return self.net(x).flatten(1)


#: the pose MLP's outputs that encode the identity rotation, per ``NetConfig.rotation``
_IDENTITY_ROTATION = {"quaternion": [1.0, 0, 0, 0], "6d": [1.0, 0, 0, 0, 1.0, 0]}


class PoseHead(nn.Module):
    """The pose MLP: ``(B, feature_dim)`` -> 256 -> 7 (quaternion w-first, unnormalised; translation), or
    -> 9 (6D rotation; translation) with ``cfg.rotation == "6d"``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        start = _IDENTITY_ROTATION[cfg.rotation] + [0.0, 0.0, 0.0]
        self.net = nn.Sequential(nn.Linear(cfg.feature_dim, cfg.pose_hidden), nn.LeakyReLU(cfg.negative_slope, True),
                                 nn.Linear(cfg.pose_hidden, len(start)))
        with torch.no_grad():  # start at the identity rotation and zero translation
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.copy_(torch.tensor(start))

    def forward(self, f: Tensor) -> Tensor:
        return self.net(f)


#: translation outputs are in units of this many mm (conditioning only; losses are in mm)
TRANSLATION_UNIT_MM = 50.0


class DAPoseNet(nn.Module):
    """``P = MLP(F(x))``: ``(B, 3, 160, 160)`` normalised position image -> ``(q (B, 4), t (B, 3))``.

    ``q`` is a unit quaternion (w, x, y, z) of the head rotation (head -> camera); ``t`` is the head
    centre minus the crop centre, in mm (so the network only reasons inside its 250 mm window).
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.F = FeatureExtractor(cfg)
        self.head = PoseHead(cfg)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.head(self.F(x))
        if self.cfg.rotation == "6d":
            q = matrix_to_quaternion(rotation_6d_to_matrix(out[:, :6]))
        else:
            q = nn.functional.normalize(out[:, :4], dim=-1)
        return q, out[:, -3:] * TRANSLATION_UNIT_MM


class Regressor(nn.Module):
    """``R``: [feature, z, one-hot] -> 1024 -> 3V vertex displacements ``(B, V, 3)`` in mm.

    With ``cfg.shape_output == "coefficients"`` the last layer gives ``n_coefficients`` face-model
    coefficients and a fixed buffer ``basis (3V, n_coefficients)`` (the face model's, set by
    :meth:`DASHapeNet.set_basis` or loaded with the weights) maps them to the displacements.
    """

    def __init__(self, cfg: NetConfig, in_dim: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if in_dim is None:
            in_dim = cfg.feature_dim + (cfg.noise_dim + cfg.domain_dim if cfg.r_input == "paper" else 0)
        coefficients = cfg.shape_output == "coefficients"
        out = cfg.n_coefficients if coefficients else 3 * cfg.n_vertices
        self.net = nn.Sequential(nn.Linear(in_dim, cfg.shape_hidden), nn.LeakyReLU(cfg.negative_slope, True),
                                 nn.Linear(cfg.shape_hidden, out))
        if coefficients:
            self.register_buffer("basis", torch.zeros(3 * cfg.n_vertices, cfg.n_coefficients))

    def coefficients(self, h: Tensor) -> Tensor:
        """``(B, in_dim)`` -> ``(B, n_coefficients)`` (coefficient head only)."""
        return self.net(h)

    def forward(self, h: Tensor) -> Tensor:
        out = self.net(h)
        if self.cfg.shape_output == "coefficients":
            out = out @ self.basis.T
        return out.view(h.shape[0], -1, 3)


class Generator(nn.Module):
    """``G``: F in reverse. [feature, z, one-hot] ``(B, C)`` -> ``(B, 3, 160, 160)`` in [-1, 1] (tanh)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        in_dim = cfg.feature_dim + cfg.noise_dim + cfg.domain_dim
        widths = list(cfg.widths)[::-1]  # 512 ... 32
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, widths[0], 5, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.LeakyReLU(cfg.negative_slope, True)]
        cin = widths[0]
        # mirror of F's layers 10..1: 3x3 stride 1 then 4x4 stride 2 (transposed), alternately
        for i, w in enumerate(widths[1:] + [3]):
            last = i == len(widths) - 1
            if i % 2 == 0:
                conv = nn.ConvTranspose2d(cin, w, 3, 1, 1, bias=last)
            else:
                conv = nn.ConvTranspose2d(cin, w, 4, 2, 1, bias=last)
            layers.append(conv)
            if not last:
                layers += [nn.BatchNorm2d(w), nn.LeakyReLU(cfg.negative_slope, True)]
            cin = w
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h[:, :, None, None])


class Discriminator(nn.Module):
    """``D``: an F-like trunk to 512, then ``D_adv`` (fully connected; logit of "real source") and
    ``D_reg`` (an MLP like R regressing the displacements ``(B, V, 3)``)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.trunk = FeatureExtractor(cfg)
        self.adv = nn.Linear(cfg.feature_dim, 1)
        self.reg = Regressor(cfg, in_dim=cfg.feature_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(logit (B,), displacements (B, V, 3))``; ``D_adv(x) = sigmoid(logit)``."""
        f = self.trunk(x)
        return self.adv(f)[:, 0], self.reg(f)


class DASHapeNet(nn.Module):
    """F, R, G, D together. Inference uses only ``F`` and ``R``: :meth:`forward` -> ``(B, V, 3)`` mm."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.F = FeatureExtractor(cfg)
        self.R = Regressor(cfg)
        self.G = Generator(cfg)
        self.D = Discriminator(cfg)

    def set_basis(self, basis: Tensor) -> None:
        """Give the coefficient heads of ``R`` and ``D_reg`` the face model's displacement basis
        ``(3V, n_coefficients)`` (:meth:`MorphableModel.displacement_basis`)."""
        if self.cfg.shape_output != "coefficients":
            raise ValueError("set_basis is for shape_output='coefficients'")
        for r in (self.R, self.D.reg):
            if tuple(basis.shape) != tuple(r.basis.shape):
                raise ValueError(f"basis must be {tuple(r.basis.shape)}, got {tuple(basis.shape)}")
            r.basis.copy_(basis.to(r.basis))

    def condition(self, f: Tensor, domain: int, noise: Tensor | None = None) -> Tensor:
        """``[F(x), z, one-hot(domain)]`` ``(B, feature + noise + domain)``; ``z = 0`` when ``noise`` is None."""
        b = f.shape[0]
        z = f.new_zeros(b, self.cfg.noise_dim) if noise is None else noise
        d = f.new_zeros(b, self.cfg.domain_dim)
        d[:, domain] = 1.0
        return torch.cat((f, z, d), dim=1)

    def regress(self, f: Tensor, noise: Tensor | None = None) -> Tensor:
        """R on features (source one-hot, as R is trained on source only)."""
        h = self.condition(f, 0, noise) if self.cfg.r_input == "paper" else f
        return self.R(h)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, 160, 160)`` normalised position image -> ``(B, V, 3)`` displacements (mm)."""
        return self.regress(self.F(x))
