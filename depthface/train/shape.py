"""DASHapeNet training with the AR-GAN domain adaptation (supplement, sections 1.2-1.3).

One iteration takes a labelled source batch ``x_s`` and an unlabelled target batch ``x_t``:

1. source batch, in order: D on eq. 1 (source terms) + eq. 2; G on eq. 3; R on eq. 4; F on
   ``L_R + lambda2 L_Dreg`` (eq. 5's source terms, gradients through G and D into F);
2. target batch, with G and R fixed: D on eq. 1's target term; F on ``lambda1 L_Dadv,t``.

Over both steps F minimises eq. 5 and D minimises eq. 1 + eq. 2. Each optimiser steps only its own
module; the others' gradients are discarded. Paper schedule: batch 16, Adam from lr 5e-4, stepping
every 10 epochs through {5e-4, 1e-4, 5e-5}, 30 epochs, target frames reused 3 times per epoch,
lambda1 = 0.03, lambda2 = 0.1. ``lambda1 = lambda2 = 0`` gives the source-only ablation (F and R
trained by eq. 4 alone).

A fair comparison of the two (beyond the paper, flags; defaults are the paper's behaviour): with
``bn_updates="paper"`` every train-mode pass of F updates its batch-norm statistics, several times per
AR-GAN iteration and on target batches too (which adapts them to the target), against once per
source-only iteration; ``bn_updates="source"`` updates them once per iteration from the source batch in
both arms. With ``r_input="paper"`` R sees ``[F(x), z, one-hot]`` with a random ``z`` in AR-GAN training
but ``z = 0`` in source-only training and at test time; ``r_input="feature"`` gives R ``F(x)`` alone in
every arm.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from depthface.errors import DepthfaceError, InputError
from depthface.facemodel import MorphableModel
from depthface.models.config import NetConfig
from depthface.models.losses import loss_d_adv, loss_d_adv_t, loss_d_adv_target, loss_d_reg, loss_f, loss_g, loss_r
from depthface.models.networks import DASHapeNet
from depthface.synth.datasets import TargetDataset
from depthface.train.common import (EpochSampler, frozen_bn_statistics, keep_epoch, labelled_sources, load_checkpoint, load_network, make_loader, network_input, pick_device,
                                    save_checkpoint, seed_epoch, write_json)

SOURCE, TARGET = 0, 1


@dataclass(frozen=True)
class ShapeTrainConfig:
    """Hyper-parameters of DASHapeNet training (defaults: the paper's)."""

    preset: str = "paper"
    epochs: int = 30
    batch_size: int = 16
    lrs: tuple[float, ...] = (5e-4, 1e-4, 5e-5)
    lr_step_epochs: int = 10
    lambda1: float = 0.03
    lambda2: float = 0.1
    target_repeat: int = 3
    #: 'nonsaturating' or 'paper' (eq. 3 as printed)
    g_form: str = "nonsaturating"
    #: 'text' (F makes target generations source-like) or 'printed' (eq. 5's printed sign)
    eq5_form: str = "text"
    #: limit source frames per epoch (ablation of the synthetic amount); 0 = all
    source_limit: int = 0
    #: use only the target split's first frames (before ``target_repeat``; the synthetic amount is counted
    #: against it, as the supplement's 1x / 2x / 3x); 0 = all
    target_limit: int = 0
    #: R's output (beyond the paper): ``"vertices"`` (paper: 3V displacements) or ``"coefficients"``
    #: (the face model's identity + expression coefficients through its fixed basis)
    shape_output: str = "vertices"
    #: F's batch-norm statistics: ``"paper"`` (every train-mode pass of F) or ``"source"`` (once per
    #: iteration, from the source batch, in both arms: the fair ablation)
    bn_updates: str = "paper"
    #: R's input: ``"paper"`` ([F(x), z, one-hot]) or ``"feature"`` (F(x) alone)
    r_input: str = "paper"
    #: keep the weights of every epoch as ``epochs/epoch_XXX.pt`` (learning curves)
    keep_epochs: bool = False
    #: warm start (beyond the paper): a shape checkpoint of the same network whose weights start this run
    #: (a run directory, its ``checkpoint.pt`` or a release file); fresh optimisers and schedule; ``""``: none
    init: str = ""
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        from depthface.models.losses import EQ5_FORMS, G_FORMS, check_form

        check_form(self.g_form, G_FORMS, "ShapeTrainConfig.g_form")
        check_form(self.eq5_form, EQ5_FORMS, "ShapeTrainConfig.eq5_form")
        if self.shape_output not in ("vertices", "coefficients"):
            raise DepthfaceError(f"shape_output must be vertices or coefficients; got {self.shape_output!r}")
        if self.bn_updates not in ("paper", "source"):
            raise DepthfaceError(f"bn_updates must be paper or source; got {self.bn_updates!r}")
        if self.r_input not in ("paper", "feature"):
            raise DepthfaceError(f"r_input must be paper or feature; got {self.r_input!r}")


def lr_at(cfg: ShapeTrainConfig, epoch: int) -> float:
    return cfg.lrs[min(epoch // cfg.lr_step_epochs, len(cfg.lrs) - 1)]


class ShapeTrainer:
    """Holds DASHapeNet, its four optimisers and the displacement targets; :meth:`step` is one iteration."""

    def __init__(self, cfg: ShapeTrainConfig, model: MorphableModel, device: str) -> None:
        self.cfg = cfg
        self.device = device
        self.face_model = model.to(device)
        coefficients = cfg.shape_output == "coefficients"
        n_coeffs = model.identity_dim + model.expression_dim if coefficients else 0
        self.net_cfg = NetConfig.preset(cfg.preset, n_vertices=int(model.regressed_vertices.numel()),
                                        shape_output=cfg.shape_output, n_coefficients=n_coeffs,
                                        r_input=cfg.r_input)
        torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
        self.net = DASHapeNet(self.net_cfg).to(device)
        if coefficients:
            self.net.set_basis(self.face_model.displacement_basis())
        n = self.net
        self.opt = {name: torch.optim.Adam(getattr(n, name).parameters(), lr=cfg.lrs[0], betas=(0.5, 0.999))
                    for name in ("F", "R", "G", "D")}
        self.adapt = cfg.lambda1 > 0 or cfg.lambda2 > 0

    def targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``dV_s (B, V, 3)`` mm from the batch's identity and expression coefficients."""
        return self.face_model.displacements(batch["identity"].to(self.device), batch["expression"].to(self.device))

    def _step(self, name: str, loss: torch.Tensor) -> None:
        for o in self.opt.values():
            o.zero_grad(set_to_none=True)
        loss.backward()
        self.opt[name].step()

    def step(self, src: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor] | None) -> dict[str, float]:
        c, n = self.cfg, self.net
        x_s = network_input(src, self.device)
        dv = self.targets(src)
        b = x_s.shape[0]
        logs: dict[str, float] = {}
        if not self.adapt:  # source-only: F and R by eq. 4
            l_r = loss_r(n.regress(n.F(x_s)), dv)
            for o in (self.opt["F"], self.opt["R"]):
                o.zero_grad(set_to_none=True)
            l_r.backward()
            self.opt["F"].step()
            self.opt["R"].step()
            return {"L_R": l_r.item()}
        z = torch.randn(b, self.net_cfg.noise_dim, device=self.device)
        once = c.bn_updates == "source"  # F's statistics from the gradient pass 1d only
        # 1a. D: eq. 1 (source terms) + eq. 2
        with torch.no_grad(), frozen_bn_statistics(n.F, once):
            x_sg = n.G(n.condition(n.F(x_s), SOURCE, z))
        logit_s, _ = n.D(x_s)
        logit_sg, reg_sg = n.D(x_sg)
        l_d = loss_d_adv(logit_s, logit_sg, None) + loss_d_reg(reg_sg, dv)
        self._step("D", l_d)
        logs["L_D"] = l_d.item()
        # 1b. G: eq. 3 (F fixed)
        with torch.no_grad(), frozen_bn_statistics(n.F, once):
            f_s = n.F(x_s)
        logit_sg, reg_sg = n.D(n.G(n.condition(f_s, SOURCE, z)))
        l_g = loss_g(logit_sg, reg_sg, dv, c.g_form)
        self._step("G", l_g)
        logs["L_G"] = l_g.item()
        # 1c. R: eq. 4 (F fixed)
        l_r = loss_r(n.regress(f_s, z if self.net_cfg.r_input == "paper" else None), dv)
        self._step("R", l_r)
        logs["L_R"] = l_r.item()
        # 1d. F: eq. 5's source terms, L_R + lambda2 L_Dreg (through R, G and D; only F steps)
        f_s = n.F(x_s)
        l_r_f = loss_r(n.regress(f_s, z if self.net_cfg.r_input == "paper" else None), dv)
        _, reg_sg = n.D(n.G(n.condition(f_s, SOURCE, z)))
        l_dreg = loss_d_reg(reg_sg, dv)
        l_f = loss_f(l_r_f, torch.zeros((), device=self.device), l_dreg, c.lambda1, c.lambda2)
        self._step("F", l_f)
        logs["L_F_source"] = l_f.item()
        if tgt is None or c.lambda1 == 0:
            return logs
        # 2. target batch, G and R fixed
        logs.update(self.target_step(tgt))
        return logs

    def target_step(self, tgt: dict[str, torch.Tensor]) -> dict[str, float]:
        """Step 2: D on eq. 1's target term, then F on ``lambda1 L_Dadv,t``; G and R are fixed (G in eval
        mode, so neither its weights nor its batch-norm statistics change)."""
        n = self.net
        x_t = network_input(tgt, self.device)
        zt = torch.randn(x_t.shape[0], self.net_cfg.noise_dim, device=self.device)
        n.G.eval()
        try:
            with frozen_bn_statistics(n.F, self.cfg.bn_updates == "source"):
                with torch.no_grad():
                    x_tg = n.G(n.condition(n.F(x_t), TARGET, zt))
                l_dt = loss_d_adv_target(n.D(x_tg)[0])
                self._step("D", l_dt)
                l_adv_t = self.f_target_step(x_t, zt)
        finally:
            n.G.train()
        return {"L_D_target": l_dt.item(), "L_Dadv_t": l_adv_t.item()}

    def f_target_step(self, x_t: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
        """F's step on ``lambda1 L_Dadv,t`` (eq. 5's target term) for normalised target images ``(B, 3, H, W)``."""
        n = self.net
        logit_tg, _ = n.D(n.G(n.condition(n.F(x_t), TARGET, zt)))
        l_adv_t = loss_d_adv_t(logit_tg, self.cfg.eq5_form)
        self._step("F", self.cfg.lambda1 * l_adv_t)
        return l_adv_t.detach()

    def state(self) -> dict:
        return {"model": self.net.state_dict(), "optimizers": {k: o.state_dict() for k, o in self.opt.items()}}

    def load(self, st: dict) -> None:
        self.net.load_state_dict(st["model"])
        for k, o in self.opt.items():
            o.load_state_dict(st["optimizers"][k])


def train_shape(source: str | Path | list, target: str | Path | None, out: str | Path, cfg: ShapeTrainConfig,
                model: MorphableModel, device: str | None = None, progress: bool = True,
                stop_after_epochs: int | None = None) -> Path:
    """Train (or resume) DASHapeNet; returns the run directory (``checkpoint.pt``, ``history.json``, ``tb/``)."""
    run = Path(out)
    device = pick_device(device)
    tr = ShapeTrainer(cfg, model, device)
    if tr.adapt and target is None:
        raise DepthfaceError("AR-GAN training needs --target (or set lambda1 = lambda2 = 0 for source-only)")
    src = labelled_sources(source, cfg.source_limit)
    tgt = (TargetDataset(target, "train", repeat=cfg.target_repeat, limit=cfg.target_limit)
           if target is not None and tr.adapt else None)
    history: list[dict] = []
    start = 0
    ckpt = run / "checkpoint.pt"
    if ckpt.exists():
        ck = load_checkpoint(ckpt)
        if ck.get("kind") != "shape" or {**_cfg_dict(ShapeTrainConfig()), **ck.get("train_config", {})} != _cfg_dict(cfg):
            raise DepthfaceError(f"{ckpt}: an existing run with other settings; use another --out")
        tr.load(ck)
        start, history = ck["epoch"], ck["history"]
    elif cfg.init:
        warm_start(tr.net, cfg.init)
    writer = SummaryWriter(str(run / "tb"))
    done = 0
    for epoch in range(start, cfg.epochs):
        if stop_after_epochs is not None and done >= stop_after_epochs:
            break
        seed_epoch(cfg.seed, epoch)
        for o in tr.opt.values():
            for g in o.param_groups:
                g["lr"] = lr_at(cfg, epoch)
        loader = make_loader(src, cfg.batch_size, EpochSampler(len(src), cfg.seed * 7919 + epoch), cfg.workers)
        tgt_iter = None
        if tgt is not None:
            tgt_iter = iter(make_loader(tgt, cfg.batch_size, EpochSampler(len(tgt), cfg.seed * 104729 + epoch), cfg.workers))
        tr.net.train()
        sums: dict[str, float] = {}
        k = 0
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"shape e{epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for batch in bar:
            tb = None
            if tgt_iter is not None:
                tb = next(tgt_iter, None)
                if tb is None:  # target exhausted: start its order again (same epoch seed, next pass)
                    tgt_iter = iter(make_loader(tgt, cfg.batch_size, EpochSampler(len(tgt), cfg.seed * 104729 + epoch + 7), cfg.workers))
                    tb = next(tgt_iter, None)
            logs = tr.step(batch, tb)
            for key, v in logs.items():
                sums[key] = sums.get(key, 0.0) + v
            k += 1
            bar.set_postfix(L_R=f"{sums['L_R'] / k:.3f}")
        rec = {"epoch": epoch + 1, "lr": lr_at(cfg, epoch), "seconds": time.perf_counter() - t0,
               "images_per_s": k * cfg.batch_size / max(time.perf_counter() - t0, 1e-9),
               **{key: v / max(k, 1) for key, v in sums.items()}}
        history.append(rec)
        for key, v in rec.items():
            if key.startswith("L_"):
                writer.add_scalar(f"shape/{key}", v, epoch + 1)
        save_checkpoint(run, {"kind": "shape", "net_config": tr.net_cfg.to_dict(), "train_config": _cfg_dict(cfg),
                              **tr.state(), "epoch": epoch + 1, "history": history,
                              "face_model": {"name": model.name, "sha256": model.sha256}})
        write_json(run / "history.json", history)
        if cfg.keep_epochs:
            keep_epoch(run, epoch + 1)
        done += 1
    writer.close()
    return run


def warm_start(net: DASHapeNet, ckpt: str | Path) -> None:
    """Copy the weights of the shape checkpoint ``ckpt`` into ``net`` (same :class:`NetConfig`); a compact
    release checkpoint gives F and R only (G and D keep their fresh weights).

    Raises:
        InputError: a missing, corrupt or wrong-kind checkpoint, or one of another network configuration.
    """
    src, ck = load_shape_net(ckpt)
    if src.cfg != net.cfg:
        raise InputError(f"--init checkpoint is another network (widths {list(src.cfg.widths[:3])}.., output "
                         f"{src.cfg.shape_output}; this run: {list(net.cfg.widths[:3])}.., {net.cfg.shape_output})", ckpt)
    modules = tuple(ck.get("inference_only", ())) or ("",)
    state = {k: v for k, v in src.state_dict().items() if k.startswith(modules)}
    net.load_state_dict(state, strict=False)


def _cfg_dict(cfg: ShapeTrainConfig) -> dict:
    d = asdict(cfg)
    d["lrs"] = list(d["lrs"])
    return d


def load_shape_net(ckpt: str | Path, device: str = "cpu") -> tuple[DASHapeNet, dict]:
    """A trained DASHapeNet in eval mode and its checkpoint dict."""
    return load_network(ckpt, "shape", DASHapeNet, device)  # type: ignore[return-value]
