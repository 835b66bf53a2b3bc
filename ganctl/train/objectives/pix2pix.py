"""pix2pix's objective (Isola et al., 2017): a conditional GAN on (input, output) pairs plus L1."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganctl.train.objectives.base import GANObjective, frozen, linear_decay


class Pix2PixObjective(GANObjective):
    """pix2pix (Isola et al., 2017), as the official code trains it.

    D sees (input, image) pairs and learns real vs generated on its 30x30 patch map with BCE on
    logits, its loss halved; G minimises the non-saturating GAN loss plus ``lambda_l1`` times the
    L1 distance to the target. ``gan=False`` trains G with L1 alone (the paper's L1 ablation);
    ``lambda_l1=0`` with the GAN loss alone. The learning rate is constant, then decays linearly
    to zero over the last ``epochs_decay`` epochs (the official 'linear' policy, stepped per epoch).
    """

    def __init__(self, nets, cfg, rt):
        super().__init__(nets, cfg, rt)
        args = cfg.objective_args
        self.lambda_l1 = float(args.get("lambda_l1", 100.0))
        self.gan = bool(args.get("gan", True))
        self.epochs_decay = int(args.get("epochs_decay", 0))

    @property
    def G_conditional(self) -> bool:
        return False

    def lr_factor(self, epoch: int) -> float:
        return linear_decay(epoch, self.cfg.epochs, self.epochs_decay)

    def set_epoch(self, epoch: int) -> None:
        self.set_lr_factor(self.lr_factor(epoch))

    def _bce(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full(logits.shape, target, device=logits.device))

    def d_step(self, batch, for_g=True):
        x, y = batch["input"], batch["target"]
        with self.rt.autocast():
            fake = self.G(x)
        self._fake = fake
        if not self.gan:
            return {}
        # D sees (input, output) side by side: both halves get the same transform
        with self.rt.autocast():
            d_fake = self.D(*self.augment(x, fake.detach()))
            d_real = self.D(*self.augment(x, y))
        self.augment.observe(d_real)  # patch logits: sure of a real patch above 0
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
                g_gan = self._bce(self.D(*self.augment(x, fake)), 1.0)
            loss = loss + g_gan
            metrics["g_gan"] = g_gan.detach()
        g_l1 = (fake.float() - y.float()).abs().mean() * self.lambda_l1  # never augmented: it compares the images themselves
        loss = loss + g_l1
        metrics["g_l1"] = g_l1.detach()  # already times lambda, as the official log
        self.update(loss, self.opt_g)
        return metrics
