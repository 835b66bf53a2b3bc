"""A family registered by a test, as docs/contributing.md describes: the least-squares GAN
(Mao et al., 2017) on the DCGAN networks. Its objective is the only new code."""

from __future__ import annotations

from dataclasses import replace

from ganctl.families import dcgan
from ganctl.families.familyspec import Family, Objective, Variant, presets
from ganctl.train import objectives


class LSGANObjective(objectives.GANObjective):
    """Least squares with targets a=0 (fake), b=1 (real) for D and c=1 for G."""

    def d_step(self, batch, for_g=True):
        real = batch["real"]
        with self.rt.autocast():
            fake = self.G(self.latent(real.shape[0]))
            d_real = self.D(self.augment(real)).float()
            d_fake = self.D(self.augment(fake.detach())).float()
        self.augment.observe(d_real - 0.5)  # least squares against 1 and 0
        loss = 0.5 * ((d_real - 1).pow(2).mean() + d_fake.pow(2).mean())
        self.update(loss, self.opt_d)
        self._fake = fake
        return {"d_loss": loss.detach()}

    def g_step(self, batch):
        fake, self._fake = self._fake, None
        with objectives.frozen(self.D), self.rt.autocast():
            loss = 0.5 * (self.D(self.augment(fake)).float() - 1).pow(2).mean()
        self.update(loss, self.opt_g)
        return {"g_loss": loss.detach()}


LEAST_SQUARES = Objective(name="least-squares", ref="tests.lsgan_family:LSGANObjective")

DIGITS = replace(dcgan.DIGITS, source="LSGAN (Mao et al., 2017) on the DCGAN digits settings", epochs=2,
                 generator=dict(features=8), discriminator=dict(features=8, norm="batch"))

LSGAN = Family(
    name="lsgan",
    summary="least-squares GAN (Mao et al., 2017)",
    data="images",
    default=Variant(networks=dcgan.DCGAN_NETS, objective=LEAST_SQUARES, presets=presets(digits=DIGITS, default=DIGITS)),
)
