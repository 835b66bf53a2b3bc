"""The image families' objectives: the original GAN game (BCE) and the Wasserstein critic
(weight clipping or gradient penalty), each a generator and a discriminator/critic."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganctl.runtime import distributed
from ganctl.train.objectives.base import GANObjective, frozen


class BCEObjective(GANObjective):
    """The original GAN game with the non-saturating generator loss, on logits.

    ``real_label`` < 1 is one-sided label smoothing (Huy1711/GAN uses 0.9 for D and G);
    ``d_reduction`` "mean" halves D's loss (real + fake) / 2 as most seeds do, "sum" does not.
    """

    def __init__(self, nets, cfg, rt):
        super().__init__(nets, cfg, rt)
        self.real_label = float(cfg.objective_args.get("real_label", 1.0))
        self.d_scale = 0.5 if cfg.objective_args.get("d_reduction", "mean") == "mean" else 1.0

    def _bce(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits, target, dtype=torch.float32))

    def d_step(self, batch, for_g=True):
        real, labels = batch["real"], batch["labels"]
        fake_labels = self.fake_labels(labels)
        with self.rt.autocast():
            fake = self.G(self.latent(real.shape[0]), fake_labels)
            d_real = self.D(self.augment(real), labels if self.G_conditional else None)
            d_fake = self.D(self.augment(fake.detach()), fake_labels)
            loss = (self._bce(d_real, self.real_label) + self._bce(d_fake, 0.0)) * self.d_scale
        self.augment.observe(d_real)  # logits: sure of a real image above 0
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
            loss = self._bce(self.D(self.augment(fake), fake_labels), self.real_label)
        self.update(loss, self.opt_g)
        return {"g_loss": loss.detach()}


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al., 2017): mean over samples of (||grad_x D(x_hat)||_2 - 1)^2,
    with x_hat on the straight line between each real and fake image at a per-sample U(0, 1)
    position and the norm taken per sample (not over the whole batch). Computed in fp32."""
    # drawn for the global batch, as the latents are (ganctl.runtime.distributed)
    eps = distributed.local_rows(torch.rand(distributed.global_rows(real.shape[0]), *([1] * (real.dim() - 1)), device=real.device))
    x_hat = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        out = D(x_hat, labels)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class WassersteinObjective(GANObjective):
    """WGAN (Arjovsky et al., 2017) with weight clipping, or WGAN-GP with the gradient penalty.

    The critic maximises E[C(real)] - E[C(fake)] (the Wasserstein estimate); the generator
    minimises -E[C(fake)]. ``n_critic`` critic steps per generator step (the engine calls g_step
    after every n_critic-th batch, so each critic step sees a fresh real batch, as in the paper).
    """

    def __init__(self, nets, cfg, rt):
        super().__init__(nets, cfg, rt)
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
        # the critic's inputs augmented; the penalty on lines between the augmented images, the
        # distribution the critic is trained on
        real_seen, fake_seen = self.augment(real), self.augment(fake.detach())
        with self.rt.autocast():
            scores = self.D(real_seen, real_labels).float()
            c_real = scores.mean()
            c_fake = self.D(fake_seen, fake_labels).float().mean()
        # a critic has no fixed boundary: a real image counts as recognised when it scores above
        # the fakes' mean (0 when real and fake overlap, 1 when the critic separates them all)
        self.augment.observe(scores - c_fake.detach())
        wasserstein = c_real - c_fake
        loss = -wasserstein
        metrics = {}
        if self.lambda_gp:
            gp = gradient_penalty(self.D, real_seen, fake_seen, real_labels)
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
            loss = -self.D(self.augment(fake), fake_labels).float().mean()
        self.update(loss, self.opt_g)
        return {"g_loss": loss.detach()}
