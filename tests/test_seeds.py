"""Seeds: every accepted seed trains, derived seeds never overflow, helpers leave the global RNG alone."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from ganctl.core import seeds
from ganctl.data import feeders, synthetic_facades
from ganctl.evaluation import classifier
from ganctl.use import inference
from tests.conftest import error_line, invoke

BIG = [123456789, 2**40 + 3, seeds.SEED_MAX, seeds.SEED_MIN, -123456789]


def test_derive_keeps_the_original_formula_wherever_it_fitted():
    # existing runs resume with the same batch order, crops and flips, and synthetic-facades keeps its bytes
    for seed in (0, 1, 42, -7, 9_000_000):
        for epoch in (0, 3, 199):
            assert seeds.derive(seed, epoch) == seed * 1_000_003 + epoch
            for b in (0, 5, 4000):
                assert seeds.derive(seed, epoch, b) == (seed * 1_000_003 + epoch) * 1_000_033 + b


@pytest.mark.parametrize("seed", BIG)
def test_every_seed_gives_valid_distinct_generators(seed):
    # the old formula overflowed torch's 64 bits here: "Overflow when unpacking long long"
    perms = {tuple(feeders.epoch_permutation(seed, e, 50).tolist()) for e in range(4)}
    assert len(perms) == 4
    draws = {tuple(torch.rand(4, generator=feeders.batch_generator(seed, e, b)).tolist()) for e in range(3) for b in range(3)}
    assert len(draws) == 9
    assert feeders.batch_generator(seed, 1, 2).initial_seed() == feeders.batch_generator(seed, 1, 2).initial_seed()
    x, _ = synthetic_facades.synthetic_facades(2, size=32, seed=seed)
    assert not torch.equal(x[0], x[1])


def test_derive_hashes_what_the_old_formula_never_had():
    a = seeds.derive(5, "classifier")
    assert a == seeds.derive(5, "classifier") and 0 <= a < 2**63
    assert len({seeds.derive(5, "a"), seeds.derive(5, "b"), seeds.derive(5, 1, 2, 3), seeds.derive(6, "a")}) == 4
    assert seeds.derive(2**200, 1) == seeds.derive(2**200, 1) and 0 <= seeds.derive(2**200, 1) < 2**63
    random.Random(seeds.derive(seeds.SEED_MAX, 7))  # usable by Python's generator too


def test_pix2pix_trains_with_a_large_seed(tmp_path):
    r = invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--epochs", 1, "--seed", 123456789,
               "--image-size", 32, "--ngf", 2, "--ndf", 2, "--batch-size", 32)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("args", [
    ["train", "gan", "--dataset", "digits", "--epochs", 1],
    ["sample", "gan"],
    ["interpolate", "gan"],
    ["translate", "in.png"],
    ["evaluate", "some-run"],
])
def test_a_seed_out_of_range_is_one_clear_line(args):
    for bad in (2**63, -(2**63) - 1, 10**30):
        line = error_line(invoke(*args, "--seed", bad))
        assert "--seed must be a whole number from" in line and str(seeds.SEED_MAX) in line


def _states() -> list[torch.Tensor]:
    out = [torch.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out += [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    return out


def _dropout_net(device: str) -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.5)).to(device).eval()


def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
def test_seeded_helpers_leave_the_global_random_state_alone(device, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("torch.manual_seed reseeds every device: helpers must not call it")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    torch.random.default_generator.manual_seed(11)
    if device == "cuda":
        torch.cuda.init()
        torch.cuda.manual_seed_all(12)
    net, x = _dropout_net(device), torch.ones(2, 64, device=device)
    before = _states()
    with torch.no_grad(), inference.paper_mode(net, seed=3):
        y1 = net(x)
    with torch.no_grad(), inference.paper_mode(net, seed=3):
        y2 = net(x)
    with torch.no_grad(), inference.paper_mode(net, seed=4):
        y3 = net(x)
    c1, c2 = classifier.new_classifier(1, 10), classifier.new_classifier(1, 10)
    after = _states()
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    assert all(torch.equal(p, q) for p, q in zip(c1.parameters(), c2.parameters(), strict=True))


@pytest.mark.parametrize("device", _devices())
def test_seeded_dropout_masks_are_the_ones_translate_always_drew(device, monkeypatch):
    # seeding only the device used gives the same masks as the torch.manual_seed it replaces
    net, x = _dropout_net(device), torch.ones(2, 64, device=device)
    with torch.no_grad(), inference.paper_mode(net, seed=5):
        new = net(x)
    with torch.no_grad(), torch.random.fork_rng(devices=[0] if device == "cuda" else []):
        torch.manual_seed(5)
        with inference.paper_mode(net):
            old = net(x)
    assert torch.equal(new, old)


def test_seeded_rng_names_a_device_type_even_for_the_cpu(monkeypatch):
    # torch 2.11's fork_rng begins with torch.device(device_type): None failed there wherever CUDA
    # was available (every CPU sample, evaluation and validation on a GPU machine)
    fork = torch.random.fork_rng
    seen = []

    def strict_fork(*args, **kwargs):
        seen.append(torch.device(kwargs["device_type"]).type)
        return fork(*args, **kwargs)

    monkeypatch.setattr(torch.random, "fork_rng", strict_fork)
    with inference.seeded_rng("cpu", 1):
        a = torch.rand(3)
    with inference.seeded_rng(torch.device("cpu"), 1):
        assert torch.equal(torch.rand(3), a)
    assert seen == ["cpu", "cpu"]
