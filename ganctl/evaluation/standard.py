"""The standard scores, comparable with papers and other tools: FID (Heusel et al., 2017), KID
(Binkowski et al., 2018) and improved precision/recall (Kynkaenniemi et al., 2019) on the 2,048
pool features of the TensorFlow FID Inception-v3, computed by torch-fidelity (:mod:`.fidelity`)
with the weights ganctl downloads (:mod:`.weights`).

The protocol, saved with every number:

- generated images are rounded to uint8 (what saving them as PNG does); grayscale images, generated
  and real, are replicated to 3 channels;
- the real images are the run's training data at the run's image size, as training saw them;
- both sides go into the network at that size, and torch-fidelity resizes them to 299x299 with its
  TensorFlow-1.x-compatible bilinear filter (no antialiasing), as the original TensorFlow FID code
  did. clean-fid (Parmar et al., 2022) shows that the resize filter moves FID by whole points; this
  is the filter of the published numbers ganctl's are compared with (and of pytorch-fid and
  torch-fidelity), so ganctl keeps it rather than an antialiased one;
- KID: 100 subsets of min(1,000, N) images, polynomial kernel; precision/recall with k = 3, also on
  Inception features (torch-fidelity's default for precision/recall would be VGG-16: ganctl uses
  one network and one weights file for all three).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ganctl.data import catalog, datasets
from ganctl.data.download import file_digest
from ganctl.evaluation import fidelity, reference, splits, weights

ProgressFn = Callable[[str], None]
FakesFn = Callable[[int, int], tuple[torch.Tensor, torch.Tensor | None]]

REFERENCE_N = 10_000  # real images at most; fewer when the training data holds fewer
REFERENCE_SEED = 0  # which real images, when there are more: fixed, so the cache serves every --seed
REFERENCE_SPLIT = "train"
LAYER = fidelity.INCEPTION_LAYER


def _how_real_images_were_sized(dataset: str) -> str:
    entry = catalog.CATALOG.get(dataset)
    if entry is not None and entry.layout in ("idx", "embedded"):
        return "resized from their native size with antialiased bilinear (as ganctl trains on them)"
    return "centre square crop, PIL bicubic resize (as ganctl trains on them)"


class InceptionReference:
    """The Inception network and the features of the real reference images of one dataset, size
    and channels (from the store's cache after the first time)."""

    def __init__(self, dataset: str, size: int, channels: int, reference_n: int, device: torch.device,
                 progress: ProgressFn | None):
        path, _ = weights.require()  # before anything slow: a missing file is the likeliest error
        fidelity.library()
        self.sha256 = file_digest(path)
        self.net = fidelity.inception_extractor(path, device)
        self.device, self.dataset, self.size, self.channels = device, dataset, size, channels
        data = datasets.load(dataset, size, channels, split=REFERENCE_SPLIT, warn=progress)
        images = data.images
        if len(images) > reference_n:
            pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(REFERENCE_SEED))[:reference_n]
            images = images[pick.sort().values]
        self.n_real = len(images)
        key = {"dataset": splits.dataset_key(dataset), "split": REFERENCE_SPLIT, "image_size": size, "channels": channels,
               "space": f"inception-{self.sha256[:12]}", "weights_sha256": self.sha256, "n": self.n_real,
               "images": reference.fingerprint(images)}

        def compute() -> dict[str, torch.Tensor]:
            if progress:
                progress(f"measuring {self.n_real:,} real images of {dataset} with Inception (cached for next time)...")
            return fidelity.features(self.net, fidelity.UInt8Images(images, rgb=True), device, (LAYER,))

        found, self.path, self.cached = reference.cached_features(key, compute)
        self.real = found[LAYER]


def score(ref: InceptionReference, make_fakes: FakesFn, n: int, num_classes: int) -> dict:
    fake, _ = make_fakes(n, num_classes)
    f = fidelity.features(ref.net, fidelity.UInt8Images(fake, rgb=True), ref.device, (LAYER,))[LAYER]
    s = fidelity.all_scores(f, ref.real)
    grey = " replicated to 3 channels;" if ref.channels == 1 else ""
    return {
        "frechet_distance": round(s["frechet_distance"], 4),
        "kid_mean": round(s["kid_mean"], 6),
        "kid_std": round(s["kid_std"], 6),
        "precision": round(s["precision"], 4) if "precision" in s else None,
        "recall": round(s["recall"], 4) if "recall" in s else None,
        "label_accuracy": None,
        "n": n,
        "protocol": {
            "feature_space": "Inception-v3 pool3, 2,048 features (TensorFlow FID weights, torch-fidelity inception-v3-compat)",
            "weights_sha256": ref.sha256,
            "generated": n,
            "reference": {"split": REFERENCE_SPLIT, "images": ref.n_real},
            "resize": (f"generated and real images at {ref.size} px, rounded to uint8;{grey} real images "
                       f"{_how_real_images_were_sized(ref.dataset)}; then {fidelity.INCEPTION_RESIZE}"),
            "kid": {"subsets": fidelity.KID_SUBSETS, "subset_size": s["kid_subset_size"], "kernel": fidelity.KID_KERNEL},
            "precision_recall": {"neighborhood": fidelity.PRC_NEIGHBORHOOD, "features": "Inception pool3"},
            "library": fidelity.version(),
        },
    }
