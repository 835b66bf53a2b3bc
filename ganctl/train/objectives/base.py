"""What every objective is: it owns the networks it trains, their optimizers, learning-rate
schedules, fp16 loss scalers and any state of its own, and exposes one training step.

The loop (:func:`ganctl.train.engine.fit`) calls :meth:`Objective.step` once per batch and knows
nothing else: not the family, not how many networks there are, not the order of their updates
(the pattern of lucidrains' diffusion objectives, and of Lightning's manual optimisation).
:meth:`Objective.state_dict` is everything a checkpoint needs beyond the weights for an exact resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ganctl.config import TrainConfig
from ganctl.core.errors import GanctlError
from ganctl.runtime import accel, distributed
from ganctl.runtime.runtime import Runtime
from ganctl.train.augment.pipeline import Augment


def make_optimizer(cfg: TrainConfig, params: Iterable, rt: Runtime) -> torch.optim.Optimizer:
    """The run's optimizer with the runtime's flags; on the CPU with ``rt.accel``, Adam is
    ganctl.runtime.accel's copy-free one (the same updates, bit for bit), and neither Adam nor RMSprop
    imports torch._dynamo there."""
    fast = rt.optimizer_flags(cfg.optimizer)
    if cfg.optimizer == "adam":
        return accel.adam_class(rt)(params, lr=cfg.lr, betas=cfg.betas, **fast)
    if cfg.optimizer == "rmsprop":
        return accel.rmsprop_class(rt)(params, lr=cfg.lr, **fast)
    raise GanctlError(f"unknown optimizer {cfg.optimizer!r} in the run's config")


@contextlib.contextmanager
def frozen(*nets: nn.Module):
    """Forward passes inside build no gradient for ``nets``' parameters. The generator's loss needs
    gradients through D, not of D: without this, every G step also computes D's weight gradients,
    which the next D step throws away (set_requires_grad in the official pix2pix code)."""
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def linear_decay(epoch: int, epochs: int, epochs_decay: int) -> float:
    """The official pix2pix/CycleGAN 'linear' policy, stepped per epoch: epoch N (1-based) runs at
    1 - max(0, N - n_const) / (decay + 1), with n_const = epochs - decay constant epochs."""
    n_const = epochs - epochs_decay
    return 1.0 - max(0, epoch + 1 - n_const) / (epochs_decay + 1)


class Objective:
    """Base of every objective. Subclasses create their optimizers (:meth:`optimizer`, which also
    gives each its fp16 loss scaler) in ``__init__`` and implement :meth:`step`.

    ``n_critic`` is what progress displays count: batches per generator update (1 for most).

    ``augment`` is the run's ``--augment`` (:class:`ganctl.train.augment.pipeline.Augment`): call it on
    every image that goes into a discriminator, real or generated, in both steps (``D(augment(x))``;
    images D sees side by side together: ``augment(x, y)``), pass ``augment.observe`` the
    discriminator's outputs on the augmented reals less its decision boundary, and end
    :meth:`step` with ``augment.end_step(metrics, index, n)``. Without ``--augment`` it is the identity."""

    n_critic = 1

    def __init__(self, nets: Mapping[str, nn.Module], cfg: TrainConfig, rt: Runtime):
        self.nets, self.cfg, self.rt = dict(nets), cfg, rt
        self.augment = Augment(cfg.augment, rt.device)
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._scalers: dict[str, torch.amp.GradScaler] = {}
        self._scaler_of: dict[int, torch.amp.GradScaler | None] = {}

    def optimizer(self, name: str, *modules: nn.Module) -> torch.optim.Optimizer:
        """A new optimizer over ``modules``' parameters, saved under ``name``; fp16 runs get a loss
        scaler for it, updated after its own steps."""
        opt = make_optimizer(self.cfg, [p for m in modules for p in m.parameters()], self.rt)
        self._optimizers[name] = opt
        scaler = self.rt.grad_scaler()
        if scaler is not None:
            self._scalers[name] = scaler
        self._scaler_of[id(opt)] = scaler
        return opt

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self._optimizers)

    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        """The fp16 loss scalers by optimizer name (none outside fp16)."""
        return dict(self._scalers)

    # ------------------------------------------------------------ state for checkpoints and resume

    def extra_state(self) -> dict:
        """State of the objective's own beyond optimizers and scalers (an image pool)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state of its own, and the checkpoint holds some")

    def state_dict(self) -> dict:
        own = self.extra_state()
        if self.augment.state_dict():  # ADA's p and its running signal (checkpoints of other runs have none)
            own = {**own, "augment": self.augment.state_dict()}
        return {"optimizers": {k: o.state_dict() for k, o in self._optimizers.items()},
                "scalers": {k: s.state_dict() for k, s in self._scalers.items()},
                "state": own}

    def load_state_dict(self, state: dict) -> None:
        """Optimizers (all must be there), scalers (absent in checkpoints of other precisions and
        older ganctl) and the objective's own state; a KeyError or ValueError when they do not fit."""
        for name, opt in self._optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, scaler in self._scalers.items():
            if name in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][name])
        own = dict(state.get("state") or {})
        if "augment" in own:
            self.augment.load_state_dict(own.pop("augment"))
        self.load_extra_state(own)

    # ------------------------------------------------------------ training

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch (0-based); objectives with a learning-rate schedule set it here."""

    def set_lr_factor(self, factor: float) -> None:
        """Every optimizer at ``factor`` times the run's learning rate."""
        for opt in self._optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.cfg.lr * factor

    def step(self, batch: dict, index: int) -> dict[str, torch.Tensor]:
        """One training step on ``batch``, the ``index``-th of the run (0-based, counted over its
        whole length, so a resume keeps any rhythm of updates). Returns its metrics as detached
        tensors on the device: never call ``.item()`` here (the metrics log reads them in blocks)."""
        raise NotImplementedError

    def update(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """zero_grad, backward, step (through the fp16 loss scaler when there is one).

        In a multi-process run the gradients are averaged over the ranks between the backward
        pass and the step. Scaled fp16 gradients are averaged before the scaler checks them: an
        inf or NaN on any rank is then on every rank, so all skip the step and scale alike."""
        scaler = self._scaler_of.get(id(opt))
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            self._average(opt)
            opt.step()
            return
        scaler.scale(loss).backward()
        self._average(opt)
        scaler.step(opt)
        scaler.update()

    @staticmethod
    def _average(opt: torch.optim.Optimizer) -> None:
        distributed.average_gradients(p for group in opt.param_groups for p in group["params"])


class GANObjective(Objective):
    """A generator ``G`` and a discriminator (or critic) ``D``, one optimizer each: a D update on
    every batch and a G update after every ``n_critic``-th (G reusing the D step's fakes)."""

    def __init__(self, nets: Mapping[str, nn.Module], cfg: TrainConfig, rt: Runtime):
        super().__init__(nets, cfg, rt)
        self.G, self.D = self.nets["generator"], self.nets["discriminator"]
        self.opt_g = self.optimizer("generator", self.G)
        self.opt_d = self.optimizer("discriminator", self.D)
        self._fake: torch.Tensor | None = None
        self._fake_labels: torch.Tensor | None = None

    def latent(self, n: int) -> torch.Tensor:
        # drawn for the global batch, of which this rank keeps its rows (ganctl.runtime.distributed)
        return distributed.local_rows(torch.randn(distributed.global_rows(n), self.cfg.z_dim, device=self.rt.device))

    def fake_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        # conditional models generate fakes for the batch's own labels (vanerk03/CGAN)
        return labels if self.G_conditional else None

    @property
    def G_conditional(self) -> bool:
        return bool(getattr(self.G, "num_classes", 0))

    def generate(self, n: int, labels: torch.Tensor | None) -> torch.Tensor:
        with self.rt.autocast():
            return self.G(self.latent(n), self.fake_labels(labels))

    def step(self, batch: dict, index: int) -> dict[str, torch.Tensor]:
        g_now = (index + 1) % self.n_critic == 0
        metrics = self.d_step(batch, for_g=g_now)
        if g_now:
            metrics.update(self.g_step(batch))
        images = next((v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor)), 0)
        return self.augment.end_step(metrics, index, images)

    def d_step(self, batch: dict, for_g: bool = True) -> dict[str, torch.Tensor]:
        """One discriminator/critic update. ``for_g``: a generator step follows on this batch,
        so keep the fakes' graph for it (otherwise they are generated without one)."""
        raise NotImplementedError

    def g_step(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError
