"""CycleGAN's objective (Zhu et al., 2017), as the official code trains it (models/cycle_gan_model.py).

Two generators, G_A: A -> B and G_B: B -> A, and two discriminators: D_A tells real B images from
G_A's, D_B real A images from G_B's. Each iteration updates both generators together with the
discriminators frozen, then both discriminators; one Adam over both generators, one over both
discriminators. Least-squares GAN loss (MSE against 1 and 0), cycle loss L1 weighted
``lambda_cycle`` each way, identity loss L1 weighted ``lambda_identity * lambda_cycle``, and the
discriminators see fakes drawn from a pool of ``pool_size`` earlier ones per direction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganctl.train.objectives.base import Objective, frozen, linear_decay


class ImagePool:
    """The history of generated images a discriminator is trained on (Shrivastava et al., 2017;
    the official ImagePool): until ``size`` images are stored each new one is stored and returned;
    then each new image is, with probability 1/2, returned as it is, else swapped for a stored one
    drawn uniformly, which is returned while the new one takes its place.

    The draws come from torch's global CPU generator, whose state every checkpoint saves, so a
    resumed run draws what the uninterrupted one would; the stored images are the pool's state."""

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        images = images.detach()
        coins = torch.rand(images.shape[0]).tolist()  # CPU draws: no wait for the device
        picks = torch.randint(0, self.size, (images.shape[0],)).tolist()
        out = []
        for image, coin, pick in zip(images.split(1), coins, picks, strict=True):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif coin > 0.5:
                out.append(self.images[pick])
                self.images[pick] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self) -> list[torch.Tensor]:
        return list(self.images)

    def load_state_dict(self, images: list[torch.Tensor], like: torch.Tensor | None = None) -> None:
        if len(images) > self.size:
            raise ValueError(f"the checkpoint's image pool holds {len(images)} images, more than --pool-size {self.size}")
        self.images = [t if like is None else t.to(like.device) for t in images]


def _lsgan(pred: torch.Tensor, target: float) -> torch.Tensor:
    pred = pred.float()
    return F.mse_loss(pred, torch.full_like(pred, target))


class CycleGANObjective(Objective):
    def __init__(self, nets, cfg, rt):
        super().__init__(nets, cfg, rt)
        args = cfg.objective_args
        self.lambda_cycle = float(args.get("lambda_cycle", 10.0))
        self.lambda_identity = float(args.get("lambda_identity", 0.5))
        self.epochs_decay = int(args.get("epochs_decay", 0))
        self.G_A, self.G_B = self.nets["G_A"], self.nets["G_B"]
        self.D_A, self.D_B = self.nets["D_A"], self.nets["D_B"]
        self.opt_g = self.optimizer("generators", self.G_A, self.G_B)
        self.opt_d = self.optimizer("discriminators", self.D_A, self.D_B)
        pool = int(args.get("pool_size", 50))
        self.pool_A, self.pool_B = ImagePool(pool), ImagePool(pool)  # of fake A images (for D_B), of fake B (for D_A)
        # Each network sees its images of one step stacked into one batch (3 generator calls instead
        # of 6, 2 discriminator calls instead of 4 in D's update): the same maths wherever every
        # norm is per image (instance norm, the recipe's), as there a batch's images never meet.
        # Batch norm would mix them, so with it each image goes alone, as in the official code.
        self.stack_calls = not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                   for net in self.nets.values() for m in net.modules())

    def set_epoch(self, epoch: int) -> None:
        self.set_lr_factor(linear_decay(epoch, self.cfg.epochs, self.epochs_decay))

    def extra_state(self) -> dict:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        like = next(self.G_A.parameters())
        self.pool_A.load_state_dict(list(state.get("pool_A", [])), like)
        self.pool_B.load_state_dict(list(state.get("pool_B", [])), like)

    def step(self, batch: dict, index: int) -> dict[str, torch.Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        lc, li = self.lambda_cycle, self.lambda_identity * self.lambda_cycle
        with frozen(self.D_A, self.D_B), self.rt.autocast():
            fake_B, fake_A, rec_A, rec_B, idt_A, idt_B = self._generate(real_A, real_B, bool(li))
            g_a = _lsgan(self.D_A(self.augment(fake_B)), 1.0)
            g_b = _lsgan(self.D_B(self.augment(fake_A)), 1.0)
        # the cycle and identity losses compare images with images: never augmented
        cycle_a = (rec_A.float() - real_A.float()).abs().mean() * lc
        cycle_b = (rec_B.float() - real_B.float()).abs().mean() * lc
        loss_g = g_a + g_b + cycle_a + cycle_b
        metrics = {"g_a": g_a.detach(), "g_b": g_b.detach(), "cycle_a": cycle_a.detach(), "cycle_b": cycle_b.detach()}
        if li:
            idt_a = (idt_A.float() - real_B.float()).abs().mean() * li
            idt_b = (idt_B.float() - real_A.float()).abs().mean() * li
            loss_g = loss_g + idt_a + idt_b
            metrics.update(idt_a=idt_a.detach(), idt_b=idt_b.detach())
        self.update(loss_g, self.opt_g)

        past_B, past_A = self.pool_B.query(fake_B), self.pool_A.query(fake_A)
        aug = self.augment
        with self.rt.autocast():
            on_real_B, on_past_B = self._judge(self.D_A, aug(real_B), aug(past_B))
            on_real_A, on_past_A = self._judge(self.D_B, aug(real_A), aug(past_A))
            d_a = 0.5 * (_lsgan(on_real_B, 1.0) + _lsgan(on_past_B, 0.0))
            d_b = 0.5 * (_lsgan(on_real_A, 1.0) + _lsgan(on_past_A, 0.0))
        for scores in (on_real_B, on_real_A):  # least squares against 1 and 0: sure of a real image above 0.5
            aug.observe(scores.float() - 0.5)
        self.update(d_a + d_b, self.opt_d)
        metrics.update(d_a=d_a.detach(), d_b=d_b.detach())
        return aug.end_step(metrics, index, real_A.shape[0])

    def _generate(self, real_A: torch.Tensor, real_B: torch.Tensor, identity: bool) -> tuple:
        """fake_B = G_A(real_A), fake_A = G_B(real_B), rec_A = G_B(fake_B), rec_B = G_A(fake_A) and,
        with ``identity``, idt_A = G_A(real_B), idt_B = G_B(real_A) (else None): stacked, in three
        calls (G_A on real A and B; G_B on real B and A and fake B; G_A on fake A)."""
        G_A, G_B = self.G_A, self.G_B
        if not self.stack_calls:
            fake_B, fake_A = G_A(real_A), G_B(real_B)
            rec_A, rec_B = G_B(fake_B), G_A(fake_A)
            idt = (G_A(real_B), G_B(real_A)) if identity else (None, None)
            return (fake_B, fake_A, rec_A, rec_B, *idt)
        n = real_A.shape[0]
        if identity:
            fake_B, idt_A = G_A(_stack(real_A, real_B)).split(n)
            fake_A, idt_B, rec_A = G_B(_stack(real_B, real_A, fake_B)).split(n)
        else:
            fake_B, idt_A, idt_B = G_A(real_A), None, None
            fake_A, rec_A = G_B(_stack(real_B, fake_B)).split(n)
        return fake_B, fake_A, rec_A, G_A(fake_A), idt_A, idt_B

    def _judge(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits on ``real`` and on ``fake``: one call on both stacked where norms are per image."""
        if not self.stack_calls:
            return D(real), D(fake)
        return D(_stack(real, fake)).split(real.shape[0])


def _stack(*images: torch.Tensor) -> torch.Tensor:
    """Images of one network's call along the batch axis, in the layout of the first (a generated
    image may come back NCHW from a channels_last input) and the type of the widest."""
    fmt = torch.channels_last if images[0].is_contiguous(memory_format=torch.channels_last) and images[0].dim() == 4 \
        else torch.contiguous_format
    return torch.cat([x.contiguous(memory_format=fmt) for x in images])
