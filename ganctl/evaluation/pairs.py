"""Scores of an image-to-image (pix2pix) generator on a paired dataset's test split: L1, PSNR and
SSIM of each translation against its target (:mod:`ganctl.evaluation.scores`), and the FID of the
translations against the targets on Inception features (:mod:`.fidelity`; only when the Inception
weights are in the store).

The pairs are resized straight to the model's size (load = crop, as the official test script), the
split is ``test`` (``val`` where there is none), and the network runs one image at a time in either
mode of ``ganctl translate``: ``paper`` (dropout on, batch statistics, seeded: the pix2pix paper's
test-time network) or ``eval`` (stored statistics, no dropout).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ganctl.core.errors import CheckpointError, GanctlError
from ganctl.data.feeders import orient, to_unit
from ganctl.evaluation import scores
from ganctl.use import inference

ProgressFn = Callable[[str], None]
SPLIT = "test"


def evaluate_pairs(
    gen: inference.LoadedGenerator,
    dataset: str,
    *,
    mode: str = "paper",
    seed: int = 0,
    device: torch.device,
    n: int | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """L1 (on [0, 1]), PSNR, SSIM (means over the pairs) and FID of ``gen``'s translations of the
    first ``n`` (all) test pairs of ``dataset``, in ``mode``."""
    from ganctl.data import paired
    from ganctl.evaluation import fidelity, standard, weights

    if mode not in inference.TRANSLATE_MODES:
        raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
    meta = gen.meta
    g = meta.get("generator") or {}
    size, direction = int(meta.get("image_size") or 0), meta.get("direction")
    if not size or direction not in ("AtoB", "BtoA"):
        raise CheckpointError(f"{gen.path} does not say its image size and direction: it cannot be evaluated")
    data = paired.load_paired(dataset, SPLIT, load_size=size, warn=progress, limit=n)
    if data.channels != int(g.get("in_channels", data.channels)):
        raise GanctlError(f"{dataset} has {data.channels}-channel images, the model takes {g.get('in_channels')}")
    count = len(data)
    if progress:
        progress(f"translating {count:,} {data.split} pairs of {data.name} ({direction}, --mode {mode})")
    net = gen.net
    outs, targets, per_image = [], [], {"l1": [], "psnr": [], "ssim": []}
    for i in range(count):
        a, b = data.batch([i])
        x, y = orient(a, b, direction)
        x = to_unit(x, device, False)
        with torch.no_grad():
            if mode == "paper":
                with inference.paper_mode(net, seed=seed + i):
                    out = net(x).float()
            else:
                was = net.training
                net.eval()
                try:
                    out = net(x).float()
                finally:
                    net.train(was)
        target = to_unit(y, device, False)
        for k, v in scores.image_scores(out, target).items():
            per_image[k].append(v)
        outs.append(out.cpu())
        targets.append(y)
    result = {k: round(sum(v) / count, 4) for k, v in per_image.items()}
    result.update({"frechet_distance": None, "kid_mean": None, "kid_std": None, "n": count, "mode": mode,
                   "split": data.split, "dataset": dataset, "direction": direction, "image_size": size})
    protocol = {"pairs": count, "split": data.split, "mode": mode, "seed": seed,
                "resize": f"pairs resized to {size} px (load = crop, as the official test script)",
                "l1": "mean absolute difference on [0, 1]", "psnr": "dB on [0, 1]",
                "ssim": "Wang et al. (2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03"}
    if weights.is_present(weights.CATALOG["inception"]) and count >= 2:
        path, _ = weights.require()
        from ganctl.core import images
        from ganctl.data.download import file_digest

        net_i = fidelity.inception_extractor(path, device)
        fake = fidelity.features(net_i, fidelity.UInt8Images(images.to_uint8(torch.cat(outs)), rgb=True), device,
                                 (standard.LAYER,))[standard.LAYER]
        real = fidelity.features(net_i, fidelity.UInt8Images(torch.cat(targets), rgb=True), device,
                                 (standard.LAYER,))[standard.LAYER]
        s = fidelity.all_scores(fake, real)
        result.update({"frechet_distance": round(s["frechet_distance"], 4), "kid_mean": round(s["kid_mean"], 6),
                       "kid_std": round(s["kid_std"], 6)})
        protocol.update({"feature_space": "Inception-v3 pool3, 2,048 features", "weights_sha256": file_digest(path),
                         "fid": f"{count:,} translations against their {count:,} targets; {fidelity.INCEPTION_RESIZE}",
                         "kid": {"subsets": fidelity.KID_SUBSETS, "subset_size": s["kid_subset_size"]},
                         "library": fidelity.version()})
    elif progress:
        progress("no FID of the translations: the Inception weights are not in the store (run 'ganctl download inception')")
    result["protocol"] = protocol
    return result
