"""The paper's losses, one function per equation (supplement, section 1.2).

``D_adv`` is handled through logits: ``D_adv(x) = sigmoid(logit)``, and ``log D_adv`` /
``log(1 - D_adv)`` are computed as ``-softplus(-logit)`` / ``-softplus(logit)`` for stability.
Smooth L1 uses PyTorch's default ``beta = 1`` in the loss's own units (mm for displacements and
translations). Expectations ``E[.]`` are batch means.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as Fn
from torch import Tensor

from depthface.errors import DepthfaceError
from depthface.geometry.chamfer import landmark_chamfer
from depthface.geometry.rotations import quaternion_conjugate, quaternion_multiply

#: eq. 3's adversarial term: the non-saturating variant (default) or the printed form
GForm = Literal["nonsaturating", "paper"]
#: eq. 5's target term: the text's meaning (default) or the printed sign
Eq5Form = Literal["text", "printed"]
G_FORMS: tuple[str, ...] = get_args(GForm)
EQ5_FORMS: tuple[str, ...] = get_args(Eq5Form)


def check_form(form: object, allowed: tuple[str, ...], what: str) -> str:
    """Return ``form`` when it is one of ``allowed`` (exactly; no case folding), else raise
    :class:`DepthfaceError` naming ``what`` and the choices."""
    if not isinstance(form, str) or form not in allowed:
        raise DepthfaceError(f"{what} must be one of {', '.join(allowed)}; got {form!r}")
    return form


def _log_d(logit: Tensor) -> Tensor:
    """``log D_adv(x)`` from logits."""
    return -Fn.softplus(-logit)


def _log_1m_d(logit: Tensor) -> Tensor:
    """``log(1 - D_adv(x))`` from logits."""
    return -Fn.softplus(logit)


def loss_d_adv(logit_source: Tensor, logit_source_gen: Tensor, logit_target_gen: Tensor | None) -> Tensor:
    """Eq. 1: ``L_Dadv = E_s -[log D(x_s) + log(1 - D(x_sg))] + E_t -[log(1 - D(x_tg))]``.

    Args:
        logit_source: ``(B,)`` D_adv logits of real source images ``x_s``.
        logit_source_gen: ``(B,)`` logits of generated source images ``x_sg = G(F(x_s))``.
        logit_target_gen: ``(B,)`` logits of generated target images ``x_tg``, or None to omit the term.
    """
    loss = -(_log_d(logit_source) + _log_1m_d(logit_source_gen)).mean()
    if logit_target_gen is not None:
        loss = loss + loss_d_adv_target(logit_target_gen)
    return loss


def loss_d_adv_target(logit_target_gen: Tensor) -> Tensor:
    """Eq. 1's target term alone, ``E_t -[log(1 - D(x_tg))]``: D's update on a target batch."""
    return -_log_1m_d(logit_target_gen).mean()


def loss_d_reg(disp_source_gen: Tensor, disp_true: Tensor) -> Tensor:
    """Eq. 2: ``L_Dreg = E_s smoothL1(D_reg(x_sg) - dV_s)``; displacements ``(B, V, 3)`` mm."""
    return Fn.smooth_l1_loss(disp_source_gen, disp_true)


def loss_g(logit_source_gen: Tensor, disp_source_gen: Tensor, disp_true: Tensor, form: GForm = "nonsaturating") -> Tensor:
    """Eq. 3: ``L_G = E_s [log(1 - D(x_sg)) + smoothL1(D_reg(x_sg) - dV_s)]``.

    ``form="paper"`` minimises ``log(1 - D(x_sg))`` as printed; ``"nonsaturating"`` (default) minimises
    ``-log D(x_sg)`` instead, which has the same fixed point but does not vanish when D wins early
    (Goodfellow et al. 2014); Generate-To-Adapt trains its generator this way too.
    """
    check_form(form, G_FORMS, "loss_g form")
    adv = _log_1m_d(logit_source_gen).mean() if form == "paper" else -_log_d(logit_source_gen).mean()
    return adv + Fn.smooth_l1_loss(disp_source_gen, disp_true)


def loss_r(disp_pred: Tensor, disp_true: Tensor) -> Tensor:
    """Eq. 4: ``L_R = E_s smoothL1(R(F(x_s)) - dV_s)``; ``(B, V, 3)`` mm."""
    return Fn.smooth_l1_loss(disp_pred, disp_true)


def loss_d_adv_t(logit_target_gen: Tensor, form: Eq5Form = "text") -> Tensor:
    """The target term of eq. 5, ``L_Dadv,t``, as F minimises it.

    As printed, ``-log(1 - D(x_tg))`` would push F's target generations toward "fake" (what D itself
    minimises in eq. 1); the text says F should make them as *source-like* as possible. ``form="text"``
    (default) implements the text: ``-log D(x_tg)``, minimised when D takes x_tg for a real source image.
    ``form="printed"`` keeps the printed sign.
    """
    check_form(form, EQ5_FORMS, "loss_d_adv_t form")
    return -_log_d(logit_target_gen).mean() if form == "text" else -_log_1m_d(logit_target_gen).mean()


def loss_f(l_r: Tensor, l_d_adv_t: Tensor, l_d_reg: Tensor, lambda1: float = 0.03, lambda2: float = 0.1) -> Tensor:
    """Eq. 5: ``L_F = L_R + lambda1 L_Dadv,t + lambda2 L_Dreg`` (paper: lambda1 = 0.03, lambda2 = 0.1)."""
    return l_r + lambda1 * l_d_adv_t + lambda2 * l_d_reg


def loss_pose_supervised(q_pred: Tensor, t_pred: Tensor, q_true: Tensor, t_true: Tensor, alpha: float = 350.0) -> Tensor:
    """Eq. 6: ``L_P^s = E_s smoothL1((P(x_s) - [q; t]) o [alpha; 1])``.

    Args:
        q_pred, q_true: ``(B, 4)`` unit quaternions (w first); the true one's sign is flipped to the
            prediction's hemisphere (q and -q are the same rotation).
        t_pred, t_true: ``(B, 3)`` translations in mm.
        alpha: weight of the quaternion part (350 in the paper).

    Returns:
        Scalar: the smooth L1 summed over the 7 components, averaged over the batch.
    """
    sign = torch.where((q_pred * q_true).sum(-1, keepdim=True) < 0, -1.0, 1.0)
    diff = torch.cat(((q_pred - sign * q_true) * alpha, t_pred - t_true), dim=-1)
    return Fn.smooth_l1_loss(diff, torch.zeros_like(diff), reduction="none").sum(-1).mean()


def loss_pose_landmark_chamfer(landmarks_posed: Tensor, clouds: list[Tensor], eps_mm: float = 30.0,
                               mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Eq. 7: ``L_P^t = sum_i min_v ||v - Phi(l_i)||^2`` over landmarks whose nearest point is within eps.

    Args:
        landmarks_posed: ``(B, L, 3)`` reference-face landmarks moved by the predicted pose (mm).
        clouds: ``B`` point clouds ``(M_b, 3)`` of the target frames (mm).
        eps_mm: matches farther than this (Euclidean, mm) are noise and excluded (paper: 30 mm).
        mask: optional ``(B, L)`` landmarks to use (default all, as in the paper).

    Returns:
        ``(loss, valid)``: the batch mean of the per-frame sums, and ``(B, L)`` which matches counted.
    """
    per_frame, valid = landmark_chamfer(landmarks_posed, clouds, eps_mm=eps_mm, mask=mask)
    return per_frame.mean(), valid


def loss_pose_geodesic(q_pred: Tensor, t_pred: Tensor, q_true: Tensor, t_true: Tensor,
                       deg_weight: float = 2.0) -> Tensor:
    """An alternative to eq. 6 (beyond the paper): the geodesic rotation error plus eq. 6's translation term.

    ``L = E smoothL1(deg_weight * theta) + smoothL1(t_pred - t_true)`` with ``theta`` the angle of
    ``R_true^T R_pred`` in **degrees**, ``2 atan2(|v|, |w|)`` of the relative quaternion (accurate for small
    angles, blind to the sign of q). ``deg_weight = 2`` puts 1 deg about where eq. 6 with ``alpha = 350``
    puts it (``350 * sin(0.5 deg) * 2 ~ 6`` summed over the components), so the translation weight is the same.

    Args:
        q_pred, q_true: ``(B, 4)`` unit quaternions (w first).
        t_pred, t_true: ``(B, 3)`` translations in mm.

    Returns:
        Scalar.
    """
    rel = quaternion_multiply(quaternion_conjugate(q_true), q_pred)
    vec = torch.sqrt((rel[..., 1:] ** 2).sum(-1) + 1e-12)
    theta_deg = torch.rad2deg(2.0 * torch.atan2(vec, rel[..., 0].abs()))
    rot = Fn.smooth_l1_loss(deg_weight * theta_deg, torch.zeros_like(theta_deg), reduction="none")
    trans = Fn.smooth_l1_loss(t_pred, t_true, reduction="none").sum(-1)
    return (rot + trans).mean()
