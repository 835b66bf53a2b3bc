"""Scores of an unpaired translation model (CycleGAN: a generator each way) on its dataset's test
split, each direction on its own.

- **FID and KID** (:mod:`.fidelity`, Inception pool3 features, as :mod:`.standard`): the
  translations of the test images of the input domain against the real test images of the output
  domain (A -> B with G_A against testB, B -> A with G_B against testA), the measure of the CycleGAN
  literature for sets with no ground truth (horse2zebra). Torch-fidelity's own metric functions,
  its KID defaults (100 subsets of min(1,000, N) images).
- **L1, PSNR and SSIM** (:mod:`ganctl.evaluation.scores`, as pix2pix's :mod:`.pairs`) where the test split is
  aligned (:func:`ganctl.data.unpaired.alignment`: maps, facades, synthetic-facades-unpaired hold
  the two sides of each scene under the same name): each translation against the true image of
  its scene.

The test images are resized straight to the model's size (the official test script's load = crop)
and translated one at a time in ``--mode`` as ``ganctl translate`` does: ``paper`` (the official
test.py without --eval, seeded) or ``eval``; for instance norm, the CycleGAN default, the two are
the same network. With no Inception weights in the store, an aligned set is scored on L1, PSNR and
SSIM alone (with a note); a set with no ground truth has nothing to score without them: the one-line
error says how to get them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ganctl.core import images
from ganctl.core.errors import CheckpointError, GanctlError
from ganctl.data.feeders import to_unit
from ganctl.evaluation import scores
from ganctl.use import inference

ProgressFn = Callable[[str], None]
SPLIT = "test"
SIDES = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}  # direction -> (input domain, output domain)


def _test_split(dataset: str, size: int, n: int | None, progress: ProgressFn | None):
    """(A images, B images, aligned, source name): the test split's first ``n`` images of each
    domain at ``size`` (uint8), B put in the order of A's scenes when the split is aligned."""
    from ganctl.data import unpaired, unpaired_spec

    src = unpaired_spec.locate(dataset)
    if SPLIT not in src.splits:
        how = ("two folders given as A_DIR:B_DIR are training images only: give the dataset as a folder "
               "with trainA/, trainB/, testA/ and testB/") if ":" in src.name else "add testA/ and testB/ beside trainA/ and trainB/"
        raise GanctlError(f"{src.name} has no test split (testA/ and testB/) to score on: {how}")
    data = unpaired.load_unpaired(src, SPLIT, load_size=size, limit=n)
    match = unpaired.alignment(data.files_a, data.files_b)
    b = data.b if match is None else data.b[torch.tensor([j for _, j in match])]
    if progress:
        how = "aligned: each A image has its B image" if match else "not aligned: no ground truth"
        progress(f"{data.name} test split: {len(data.a):,} A and {len(b):,} B images ({how})")
    return data.a, b, match is not None, data.name


def _translate(gen: inference.LoadedGenerator, x: torch.Tensor, mode: str, seed: int, device: torch.device) -> torch.Tensor:
    """[-1, 1] translations (on the CPU) of uint8 images ``x``, one at a time in ``mode``."""
    net, out = gen.net, []
    for i in range(len(x)):
        xi = to_unit(x[i : i + 1], device, False)
        with torch.no_grad():
            if mode == "paper":
                with inference.paper_mode(net, seed=seed + i):
                    y = net(xi).float()
            else:
                was = net.training
                net.eval()
                try:
                    y = net(xi).float()
                finally:
                    net.train(was)
        out.append(y.cpu())
    return torch.cat(out)


def _inception_scores(fakes: dict[str, torch.Tensor], domains: dict[str, torch.Tensor], name: str,
                      device: torch.device, results: dict) -> str:
    """FID and KID of each direction's translations against the real test images of its output
    domain, into ``results``; the weights' sha256. Every image goes through Inception in one pass
    (each real domain once, whichever directions need it)."""
    from ganctl.data.download import file_digest
    from ganctl.evaluation import fidelity, weights

    path, _ = weights.require()
    reals = sorted({SIDES[way][1] for way in fakes})
    sets = [domains[d] for d in reals] + list(fakes.values())
    if min(len(x) for x in sets) < 2:
        raise GanctlError(f"{name} has {min(len(x) for x in sets)} test image(s) on one side: FID needs at least 2")
    net = fidelity.inception_extractor(path, device)
    layer = fidelity.INCEPTION_LAYER
    every = fidelity.features(net, fidelity.UInt8Images(torch.cat(sets), rgb=True), device, (layer,))[layer]
    parts = dict(zip([*reals, *fakes], every.split([len(x) for x in sets]), strict=True))
    for way in fakes:
        fake, real = parts[way], parts[SIDES[way][1]]
        subset = fidelity.kid_subset_size(len(fake), len(real))
        kid_mean, kid_std = fidelity.kid(fake, real, subset)
        results[way].update({"frechet_distance": round(fidelity.frechet(fake, real), 4), "kid_mean": round(kid_mean, 6),
                             "kid_std": round(kid_std, 6), "kid_subset_size": subset})
    return file_digest(path)


def score(gens: dict[str, inference.LoadedGenerator], dataset: str, *, n: int | None = None, seed: int = 0,
          mode: str = "paper", device: torch.device, progress: ProgressFn | None = None) -> dict:
    """Scores of each generator of ``gens`` (direction -> generator: AtoB, BtoA) on the test split
    of the unpaired ``dataset`` (at most ``n`` images of each domain): see the module's docstring."""
    from ganctl.evaluation import fidelity, weights

    if mode not in inference.TRANSLATE_MODES:
        raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
    for direction, gen in gens.items():
        if direction not in SIDES or gen.meta.get("direction") != direction:
            raise CheckpointError(f"{gen.path} does not say that it translates {direction}: it cannot be scored so")
    sizes = {int(g.meta.get("image_size") or 0) for g in gens.values()}
    if len(sizes) != 1 or not min(sizes):
        raise CheckpointError(f"{next(iter(gens.values())).path} does not say its image size: it cannot be evaluated")
    size = sizes.pop()
    channels = {int(g.meta["generator"].get("in_channels", 3)) for g in gens.values()}
    if channels != {3}:
        raise GanctlError(f"unpaired sets hold RGB images, and {next(iter(gens.values())).path} takes {min(channels)} channel(s)")
    fidelity.library()  # a missing dependency is answered before anything is translated
    have_weights = weights.is_present(weights.CATALOG["inception"])
    a, b, aligned, name = _test_split(dataset, size, n, progress)
    if not have_weights and not aligned:
        weights.require()  # FID and KID are all there is to score without ground truth: say how to get them
    domains = {"a": a, "b": b}
    results, fakes = {}, {}
    for direction, gen in gens.items():
        src, dst = SIDES[direction]
        x, real = domains[src], domains[dst]
        if progress:
            progress(f"translating {len(x):,} test images {direction} with {gen.path.parent.name} (--mode {mode})")
        out = _translate(gen, x, mode, seed, device)
        fakes[direction] = images.to_uint8(out)
        r: dict = {"generator": str(gen.path), "n": len(x), "reference": len(real),
                   "frechet_distance": None, "kid_mean": None, "kid_std": None, "l1": None, "psnr": None, "ssim": None}
        if aligned:  # image by image, as pix2pix's pairs are scored: means over the scenes
            each = [scores.image_scores(out[i : i + 1], to_unit(real[i : i + 1], torch.device("cpu"), False))
                    for i in range(len(x))]
            r.update({k: round(sum(e[k] for e in each) / len(each), 4) for k in ("l1", "psnr", "ssim")})
        results[direction] = r
    sha256 = _inception_scores(fakes, domains, name, device, results) if have_weights else None
    if sha256 is None and progress:
        progress("no FID or KID: the Inception weights are not in the store (run 'ganctl download inception')")
    protocol = {"split": SPLIT, "mode": mode, "seed": seed, "aligned": aligned,
                "resize": f"test images resized to {size} px (load = crop, as the official test script), PIL bicubic"}
    if aligned:
        protocol.update({"l1": "mean absolute difference to the true image of the scene, on [0, 1]", "psnr": "dB on [0, 1]",
                         "ssim": "Wang et al. (2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03"})
    if sha256 is not None:
        protocol.update({"feature_space": "Inception-v3 pool3, 2,048 features (TensorFlow FID weights, torch-fidelity "
                                          "inception-v3-compat)", "weights_sha256": sha256,
                         "fid": f"translations against the real test images of the output domain; {fidelity.INCEPTION_RESIZE}",
                         "kid": {"subsets": fidelity.KID_SUBSETS, "kernel": fidelity.KID_KERNEL},
                         "library": fidelity.version()})
    return {"dataset": dataset, "split": SPLIT, "image_size": size, "mode": mode, "seed": seed, "aligned": aligned,
            "directions": results, "protocol": protocol}
