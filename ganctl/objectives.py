"""Training objectives: each wraps the two networks and their optimizers and owns the losses.

The engine only calls ``d_step`` on every batch and ``g_step`` after every ``n_critic``-th one;
it knows nothing about which GAN it trains (the pattern of lucidrains' diffusion objectives).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ganctl import accel, distributed
from ganctl.config import TrainConfig
from ganctl.errors import GanctlError
from ganctl.runtime import Runtime


def make_optimizer(cfg: TrainConfig, params, rt: Runtime) -> torch.optim.Optimizer:
    """The run's optimizer with the runtime's flags; on the CPU with ``rt.accel``, Adam is
    ganctl.accel's copy-free one (the same updates, bit for bit), and neither Adam nor RMSprop
    imports torch._dynamo there."""
    fast = rt.optimizer_flags(cfg.optimizer)
    if cfg.optimizer == "adam":
        return accel.adam_class(rt)(params, lr=cfg.lr, betas=cfg.betas, **fast)
    if cfg.optimizer == "rmsprop":
        return accel.rmsprop_class(rt)(params, lr=cfg.lr, **fast)
    raise GanctlError(f"unknown optimizer {cfg.optimizer!r} in the run's config")


@contextlib.contextmanager
def frozen(net: nn.Module):
    """Forward passes inside build no gradient for ``net``'s parameters. The generator's loss needs
    gradients through D, not of D: without this, every G step also computes D's weight gradients,
    which the next D step throws away (set_requires_grad in the official pix2pix code)."""
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Objective:
    """Base: holds G, D, their optimizers, and the runtime (device, precision)."""

    n_critic = 1

    def __init__(self, G: nn.Module, D: nn.Module, cfg: TrainConfig, rt: Runtime):
        self.G, self.D, self.cfg, self.rt = G, D, cfg, rt
        self.opt_g = make_optimizer(cfg, G.parameters(), rt)
        self.opt_d = make_optimizer(cfg, D.parameters(), rt)
        # fp16: one loss scaler per network, each updated after its own step
        self.scale_g, self.scale_d = rt.grad_scaler(), rt.grad_scaler()
        self._fake: torch.Tensor | None = None
        self._fake_labels: torch.Tensor | None = None

    def latent(self, n: int) -> torch.Tensor:
        # drawn for the global batch, of which this rank keeps its rows (ganctl.distributed)
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

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def update(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """zero_grad, backward, step (through the fp16 loss scaler when there is one).

        In a multi-process run the gradients are averaged over the ranks between the backward
        pass and the step. Scaled fp16 gradients are averaged before the scaler checks them: an
        inf or NaN on any rank is then on every rank, so all skip the step and scale alike."""
        scaler = self.scale_g if opt is self.opt_g else self.scale_d
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

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch (0-based); objectives with a learning-rate schedule set it here."""

    def d_step(self, batch: dict, for_g: bool = True) -> dict[str, torch.Tensor]:
        """One discriminator/critic update. ``for_g``: a generator step follows on this batch,
        so keep the fakes' graph for it (otherwise they are generated without one)."""
        raise NotImplementedError

    def g_step(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class BCEObjective(Objective):
    """The original GAN game with the non-saturating generator loss, on logits.

    ``real_label`` < 1 is one-sided label smoothing (Huy1711/GAN uses 0.9 for D and G);
    ``d_reduction`` "mean" halves D's loss (real + fake) / 2 as most seeds do, "sum" does not.
    """

    def __init__(self, G, D, cfg, rt):
        super().__init__(G, D, cfg, rt)
        self.real_label = float(cfg.objective_args.get("real_label", 1.0))
        self.d_scale = 0.5 if cfg.objective_args.get("d_reduction", "mean") == "mean" else 1.0

    def _bce(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits, target, dtype=torch.float32))

    def d_step(self, batch, for_g=True):
        real, labels = batch["real"], batch["labels"]
        fake_labels = self.fake_labels(labels)
        with self.rt.autocast():
            fake = self.G(self.latent(real.shape[0]), fake_labels)
            d_real = self.D(real, labels if self.G_conditional else None)
            d_fake = self.D(fake.detach(), fake_labels)
            loss = (self._bce(d_real, self.real_label) + self._bce(d_fake, 0.0)) * self.d_scale
        self.update(loss, self.opt_d)
        # The generator step reuses this batch of fakes (one G forward per iteration, as in
        # pytorch/examples dcgan and the seeds).
        self._fake, self._fake_labels = fake, fake_labels
        return {
            "d_loss": loss.detach(),
            "d_real": torch.sigmoid(d_real.detach().float()).mean(),
            "d_fake": torch.sigmoid(d_fake.detach().float()).mean(),
        }

    def g_step(self, batch):
        fake, fake_labels = self._fake, self._fake_labels
        self._fake = self._fake_labels = None
        with frozen(self.D), self.rt.autocast():
            loss = self._bce(self.D(fake, fake_labels), self.real_label)
        self.update(loss, self.opt_g)
        return {"g_loss": loss.detach()}


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al., 2017): mean over samples of (||grad_x D(x_hat)||_2 - 1)^2,
    with x_hat on the straight line between each real and fake image at a per-sample U(0, 1)
    position and the norm taken per sample (not over the whole batch). Computed in fp32."""
    # drawn for the global batch, as the latents are (ganctl.distributed)
    eps = distributed.local_rows(torch.rand(distributed.global_rows(real.shape[0]), *([1] * (real.dim() - 1)), device=real.device))
    x_hat = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        out = D(x_hat, labels)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class WassersteinObjective(Objective):
    """WGAN (Arjovsky et al., 2017) with weight clipping, or WGAN-GP with the gradient penalty.

    The critic maximises E[C(real)] - E[C(fake)] (the Wasserstein estimate); the generator
    minimises -E[C(fake)]. ``n_critic`` critic steps per generator step (the engine calls g_step
    after every n_critic-th batch, so each critic step sees a fresh real batch, as in the paper).
    """

    def __init__(self, G, D, cfg, rt):
        super().__init__(G, D, cfg, rt)
        args = cfg.objective_args
        self.n_critic = int(args.get("n_critic", 5))
        self.clip = args.get("clip")
        self.lambda_gp = args.get("lambda_gp")

    def d_step(self, batch, for_g=True):
        real, labels = batch["real"], batch["labels"]
        fake_labels = self.fake_labels(labels)
        real_labels = labels if self.G_conditional else None
        with torch.set_grad_enabled(for_g):
            with self.rt.autocast():
                fake = self.G(self.latent(real.shape[0]), fake_labels)
        with self.rt.autocast():
            c_real = self.D(real, real_labels).float().mean()
            c_fake = self.D(fake.detach(), fake_labels).float().mean()
        wasserstein = c_real - c_fake
        loss = -wasserstein
        metrics = {}
        if self.lambda_gp:
            gp = gradient_penalty(self.D, real, fake.detach(), real_labels)
            loss = loss + self.lambda_gp * gp
            metrics["gp"] = gp.detach()
        self.update(loss, self.opt_d)
        if self.clip:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.clip, self.clip)
        if for_g:  # the generator step reuses the last critic step's fakes, as both seeds do
            self._fake, self._fake_labels = fake, fake_labels
        return {"critic_loss": loss.detach(), "wasserstein": wasserstein.detach(), **metrics}

    def g_step(self, batch):
        fake, fake_labels = self._fake, self._fake_labels
        self._fake = self._fake_labels = None
        with frozen(self.D), self.rt.autocast():
            loss = -self.D(fake, fake_labels).float().mean()
        self.update(loss, self.opt_g)
        return {"g_loss": loss.detach()}


class Pix2PixObjective(Objective):
    """pix2pix (Isola et al., 2017), as the official code trains it.

    D sees (input, image) pairs and learns real vs generated on its 30x30 patch map with BCE on
    logits, its loss halved; G minimises the non-saturating GAN loss plus ``lambda_l1`` times the
    L1 distance to the target. ``gan=False`` trains G with L1 alone (the paper's L1 ablation);
    ``lambda_l1=0`` with the GAN loss alone. The learning rate is constant, then decays linearly
    to zero over the last ``epochs_decay`` epochs (the official 'linear' policy, stepped per epoch).
    """

    def __init__(self, G, D, cfg, rt):
        super().__init__(G, D, cfg, rt)
        args = cfg.objective_args
        self.lambda_l1 = float(args.get("lambda_l1", 100.0))
        self.gan = bool(args.get("gan", True))
        self.epochs_decay = int(args.get("epochs_decay", 0))

    @property
    def G_conditional(self) -> bool:
        return False

    def lr_factor(self, epoch: int) -> float:
        """Official linear policy: epoch N (1-based) runs at 1 - max(0, N - n_const) / (decay + 1)."""
        n_const = self.cfg.epochs - self.epochs_decay
        return 1.0 - max(0, epoch + 1 - n_const) / (self.epochs_decay + 1)

    def set_epoch(self, epoch: int) -> None:
        lr = self.cfg.lr * self.lr_factor(epoch)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def _bce(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full(logits.shape, target, device=logits.device))

    def d_step(self, batch, for_g=True):
        x, y = batch["input"], batch["target"]
        with self.rt.autocast():
            fake = self.G(x)
        self._fake = fake
        if not self.gan:
            return {}
        with self.rt.autocast():
            d_fake = self.D(x, fake.detach())
            d_real = self.D(x, y)
        loss_fake, loss_real = self._bce(d_fake, 0.0), self._bce(d_real, 1.0)
        loss = 0.5 * (loss_fake + loss_real)
        self.update(loss, self.opt_d)
        return {"d_real": loss_real.detach(), "d_fake": loss_fake.detach()}

    def g_step(self, batch):
        x, y = batch["input"], batch["target"]
        fake, self._fake = self._fake, None
        metrics = {}
        loss = torch.zeros((), device=fake.device)
        if self.gan:
            with frozen(self.D), self.rt.autocast():
                g_gan = self._bce(self.D(x, fake), 1.0)
            loss = loss + g_gan
            metrics["g_gan"] = g_gan.detach()
        g_l1 = (fake.float() - y.float()).abs().mean() * self.lambda_l1
        loss = loss + g_l1
        metrics["g_l1"] = g_l1.detach()  # already times lambda, as the official log
        self.update(loss, self.opt_g)
        return metrics


def build(G: nn.Module, D: nn.Module, cfg: TrainConfig, rt: Runtime) -> Objective:
    """The objective the run's family registers for its networks (``cfg.objective`` names it)."""
    from ganctl import registry

    spec = registry.get(cfg.family).for_arch(cfg.arch).objective
    if spec.name != cfg.objective:
        raise GanctlError(f"the run's config names objective {cfg.objective!r}, but {cfg.family} trains {cfg.arch} with {spec.name!r}")
    return registry.resolve(spec.ref)(G, D, cfg, rt)
