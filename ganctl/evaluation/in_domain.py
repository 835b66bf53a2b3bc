"""Scores in the feature space of ganctl's own dataset classifier (:mod:`.classifier`), for labelled
small-image sets (digits, mnist, fashion-mnist, class folders), where Inception, trained on 299 px
photos, knows nothing of the images.

The classifier is handed to torch-fidelity as a custom feature extractor, and the features and
numbers (Frechet distance, KID) come through the same library calls as for Inception
(:mod:`.fidelity`). Generated images are rounded to uint8, as a saved PNG would be, like the real
ones. The real floor (real training images against the same test images) is taken at the same
sample size as the generated side: both are ``min(n, training images)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch

from ganctl.data.download import file_digest
from ganctl.evaluation import cache, classifier, fidelity, reference, splits
from ganctl.evaluation.classifier import DatasetClassifier

ProgressFn = Callable[[str], None]
FakesFn = Callable[[int, int], tuple[torch.Tensor, torch.Tensor | None]]  # (n, num_classes) -> uint8 images, labels
LAYERS = ("features", "logits")


@functools.cache
def _extractor_class():
    """torch-fidelity's FeatureExtractorBase around the classifier (made when the library is there)."""
    fidelity.library()
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class ClassifierFeatures(FeatureExtractorBase):
        """The classifier's 128-d penultimate layer ('features') and its class logits, of uint8 images."""

        def __init__(self, name: str, features_list: list[str], model: DatasetClassifier, device: torch.device):
            super().__init__(name, features_list)
            self.model, self.device = model, device

        @staticmethod
        def get_provided_features_list():
            return LAYERS

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "features"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return None

        def forward(self, x: torch.Tensor):
            f = self.model.features(classifier.to_device_batch(x, self.device))
            out = {"features": f.float(), "logits": self.model.head(f).float()}
            return tuple(out[k] for k in self.features_list)

    return ClassifierFeatures


def extractor(model: DatasetClassifier, device: torch.device):
    return _extractor_class()("ganctl-classifier", list(LAYERS), model, device)


def _features(net, images: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    return fidelity.features(net, fidelity.UInt8Images(images, rgb=False), device, LAYERS)


class InDomainReference:
    """What generated images of one dataset, size and channels are measured against: the
    classifier, the test split's features, and those of ``n`` training images (the floor)."""

    def __init__(self, dataset: str, size: int, channels: int, n: int, seed: int, device: torch.device,
                 progress: ProgressFn | None):
        real = splits.load_splits(dataset, size, channels, progress)
        model, info = cache.classifier_for(real, device, progress)
        self.splits, self.model, self.info, self.device = real, model, info, device
        self.sha256 = file_digest(info["path"])
        self.n = min(n, len(real.train))  # the floor and the generated side: the same N
        self.net = extractor(model, device)
        base = {"dataset": splits.dataset_key(dataset), "image_size": size, "channels": channels,
                "space": f"classifier-{self.sha256[:12]}", "weights_sha256": self.sha256}
        self.test, _, _ = reference.cached_features(
            {**base, "split": "test", "images": reference.fingerprint(real.test.images)},
            lambda: _features(self.net, real.test.images, device))
        pick = torch.randperm(len(real.train), generator=torch.Generator().manual_seed(seed))[: self.n]
        train = real.train.images[pick]
        self.train, _, _ = reference.cached_features(
            {**base, "split": "train", "n": self.n, "seed": seed, "images": reference.fingerprint(train)},
            lambda: _features(self.net, train, device))


def score(ref: InDomainReference, make_fakes: FakesFn, conditional: bool) -> dict:
    """FD and KID of generated images against the test split, the same for ``n`` real training
    images (the floor), and (conditional generators) label accuracy."""
    fake, labels = make_fakes(ref.n, len(ref.splits.classes))
    f = _features(ref.net, fake, ref.device)
    test = ref.test["features"]
    size = fidelity.kid_subset_size(ref.n, len(test))
    kid, kid_std = fidelity.kid(f["features"], test, size)
    floor_kid, floor_kid_std = fidelity.kid(ref.train["features"], test, size)
    name = Path(ref.info["path"]).parent.name
    return {
        "frechet_distance": round(fidelity.frechet(f["features"], test), 4),
        "kid_mean": round(kid, 6),
        "kid_std": round(kid_std, 6),
        "real_train_vs_test_frechet_distance": round(fidelity.frechet(ref.train["features"], test), 4),
        "real_train_vs_test_kid_mean": round(floor_kid, 6),
        "real_train_vs_test_kid_std": round(floor_kid_std, 6),
        "label_accuracy": round(float((f["logits"].argmax(1) == labels).float().mean()), 4) if conditional else None,
        "classifier_test_accuracy": ref.info["test_accuracy"],
        "classifier": name,
        "n": ref.n,
        "protocol": {
            "feature_space": f"ganctl's {name} classifier, penultimate layer ({classifier.FEATURE_DIM} features)",
            "weights_sha256": ref.sha256,
            "generated": ref.n,
            "reference": {"split": "test", "images": len(test)},
            "floor": {"split": "train", "images": ref.n},
            "resize": "none: generated and real images at the run's size, rounded to uint8"
                      + (f"; the classifier average-pools images over {classifier.DatasetClassifier.MAX_SIZE} px to "
                         f"{classifier.DatasetClassifier.MAX_SIZE} px" if ref.splits.train.image_size > 32 else ""),
            "kid": {"subsets": fidelity.KID_SUBSETS, "subset_size": size, "kernel": fidelity.KID_KERNEL},
            "library": fidelity.version(),
        },
    }
