"""The small CNN whose penultimate layer the in-domain Frechet distance and KID are measured in,
and its training.

Inception, trained on 299 px photos, knows nothing about 8x8 digits, so for labelled small-image
sets ganctl trains this classifier on the dataset's training split: a fixed seed, a bounded sample
budget, no global random state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganctl import __version__
from ganctl.data.datasets import ImageData
from ganctl.evaluation.splits import RealSplits
from ganctl.use import inference

ProgressFn = Callable[[str], None]

# bump when the network or its training changes: cached classifiers of another version are retrained
CLASSIFIER_VERSION = 1
CLASSIFIER_SEED = 0
FEATURE_DIM = 128
# about 120,000 training samples at most: 2 epochs of MNIST (about a minute on 2 CPU cores),
# 15 epochs of digits' 1,500 images
SAMPLE_BUDGET = 120_000
MAX_EPOCHS = 15
MIN_EPOCHS = 2
BATCH = 128
LR = 2e-3
FEATURE_BATCH = 500


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DatasetClassifier(nn.Module):
    """A small CNN for [-1, 1] images of any size from 8 px, 1 or 3 channels.

    Three conv-BN-ReLU blocks (16, 32, 64 channels) with two 2x2 poolings, an adaptive pool to
    2x2, then a 128-d feature layer and a linear head. Images wider than 32 px are average-pooled
    to 32 px first: class evidence in these datasets survives that, and it keeps training cheap.
    """

    MAX_SIZE = 32

    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 16, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(channels, width),
            nn.MaxPool2d(2),
            _conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            _conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.embed = nn.Sequential(nn.Linear(16 * width, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations (N, 128): the space the Frechet distance is measured in."""
        if x.shape[-1] > self.MAX_SIZE or x.shape[-2] > self.MAX_SIZE:
            x = F.adaptive_avg_pool2d(x, self.MAX_SIZE)
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the generators' range (as the training loop does)."""
    return images.float().div_(127.5).sub_(1.0) if images.dtype == torch.uint8 else images.float()


def _memory_format(device: torch.device) -> torch.memory_format:
    # NHWC convolutions: 1.3-1.45x faster for this network on a CPU (oneDNN, measured at 28 and
    # 32 px, batch 128), and the usual layout for cuDNN
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def on_device(model: DatasetClassifier, device: torch.device) -> DatasetClassifier:
    """``model`` moved to ``device`` in the memory format its convolutions are fastest in there."""
    return model.to(device).to(memory_format=_memory_format(device))


def to_device_batch(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 or [-1, 1] images as the classifier takes them on ``device``."""
    return _to_float(images).to(device).contiguous(memory_format=_memory_format(device))


@torch.no_grad()
def features_and_logits(model: DatasetClassifier, images: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The features and class logits of ``images`` (uint8 or [-1, 1] floats), on the CPU."""
    model.eval()
    feats, logits = [], []
    for chunk in images.split(FEATURE_BATCH):
        f = model.features(to_device_batch(chunk, device))
        feats.append(f.cpu())
        logits.append(model.head(f).cpu())
    return torch.cat(feats), torch.cat(logits)


def classifier_epochs(n_train: int) -> int:
    return max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(SAMPLE_BUDGET / max(n_train, 1))))


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light augmentation: a random translation of up to 1/8 of the image per sample."""
    n = x.shape[0]
    t = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.25  # grid units: 2 = the whole image
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = t
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def accuracy(model: DatasetClassifier, data: ImageData, device: torch.device) -> float:
    _, logits = features_and_logits(model, data.images, device)
    return float((logits.argmax(1) == data.labels).float().mean())


def new_classifier(channels: int, num_classes: int) -> DatasetClassifier:
    """An untrained classifier, on the CPU, with the same initial weights every time."""
    # its initial weights come from a fixed seed, not the global random stream: building one in
    # the middle of a training run must not change that run's noise (exact resume)
    with inference.seeded_rng("cpu", CLASSIFIER_SEED):  # built on the CPU, then moved
        return DatasetClassifier(channels, num_classes)


def train_classifier(splits: RealSplits, device: torch.device, progress: ProgressFn | None = None) -> tuple[DatasetClassifier, dict]:
    """Train the classifier on the training split: Adam, a fixed seed, a bounded sample budget.

    It uses no global random state (its own seeded generators), so calling it in the middle of a
    training run leaves that run's random stream, and so its exact resume, untouched.
    """
    t0 = time.perf_counter()
    train = splits.train
    num_classes = len(splits.classes)
    model = on_device(new_classifier(train.channels, num_classes), device).train()
    gen = torch.Generator().manual_seed(CLASSIFIER_SEED)
    epochs = classifier_epochs(len(train))
    steps = epochs * math.ceil(len(train) / BATCH)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    images, labels = train.images, train.labels
    correct = seen = 0
    for epoch in range(epochs):
        perm = torch.randperm(len(train), generator=gen)
        correct = seen = 0
        for idx in perm.split(BATCH):
            x = _shift(_to_float(images[idx]).to(device), gen).contiguous(memory_format=_memory_format(device))
            y = labels[idx].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        if progress and (epochs <= 5 or (epoch + 1) % 5 == 0):
            progress(f"  classifier epoch {epoch + 1}/{epochs}: training accuracy {correct / seen:.3f}")
    model.eval()
    info = {
        "dataset": splits.dataset,
        "image_size": train.image_size,
        "channels": train.channels,
        "classes": list(splits.classes),
        "train_accuracy": round(correct / max(seen, 1), 4),  # last epoch, on augmented batches
        "test_accuracy": round(accuracy(model, splits.test, device), 4),
        "epochs": epochs,
        "train_images": len(train),
        "test_images": len(splits.test),
        "seconds": round(time.perf_counter() - t0, 1),
        "fingerprint": splits.fingerprint,
        "classifier_version": CLASSIFIER_VERSION,
        "ganctl_version": __version__,
    }
    return model, info
