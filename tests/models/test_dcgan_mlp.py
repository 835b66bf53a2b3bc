from __future__ import annotations

import pytest
import torch

from ganctl import models
from ganctl.config import make_config
from ganctl.core.errors import UnknownNameError
from ganctl.families import registry
from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("size", [16, 32, 64])
def test_dcgan_shapes(size):
    G = DCGANGenerator(z_dim=8, channels=3, image_size=size, features=4)
    D = DCGANDiscriminator(channels=3, image_size=size, features=4)
    with torch.no_grad():
        x = G(torch.randn(5, 8))
    assert x.shape == (5, 3, size, size)
    assert float(x.abs().max()) <= 1.0
    assert D(x).shape == (5,)


def test_dcgan_64_matches_the_seed_topology():
    # FidanVural/GAN: CT(100,1024) 1024->512->256->128 -> C; D 64->128->256->512 -> 1
    G = DCGANGenerator(100, 1, 64, 64)
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(100, 1024), (1024, 512), (512, 256), (256, 128), (128, 1)]
    assert [c.bias is None for c in convs] == [True, True, True, True, False]
    D = DCGANDiscriminator(1, 64, 64)
    dconvs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in dconvs] == [(1, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.num_features == 64 for m in D.modules())


def test_dcgan_rejects_sizes_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(8, 1, 48, 4)


def test_instance_norm_critic_option():
    D = DCGANDiscriminator(1, 32, 4, norm="instance")
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in D.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())


def test_unknown_family_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'dcgan'"):
        registry.get("dcgn")


@pytest.mark.parametrize("family", [f for f in registry.names() if not registry.get(f).translates])
def test_every_preset_builds_and_runs(family):
    fam = registry.get(family)
    classes = tuple("abc") if fam.conditional else None
    for arch in fam.arch_names():
        _, _, presets = fam.variant(arch)
        for key, preset in presets.items():
            assert preset.source, f"{family}/{key} has no source"
            channels = 3 if key in ("rgb", "celeba") else 1
            cfg = make_config(family, "digits", "t", channels=channels, classes=classes, preset_key=key, arch=arch)
            G = models.build_generator(cfg.arch, cfg.generator)
            D = models.build_discriminator(cfg.arch, cfg.discriminator)
            G.eval()
            D.eval()
            y = torch.tensor([0, 2]) if classes else None
            with torch.no_grad():
                x = G(torch.randn(2, cfg.z_dim), y)
                assert x.shape == (2, channels, cfg.image_size, cfg.image_size)
                assert D(x, y).shape == (2,)


def test_every_pix2pix_preset_builds_and_runs():
    fam = registry.get("pix2pix")
    for key, preset in fam.presets.items():
        assert preset.source, f"pix2pix/{key} has no source"
        cfg = make_config("pix2pix", key, "t", channels=3, classes=None, preset_key=key,
                          generator_overrides={"ngf": 4}, discriminator_overrides={"ndf": 4})
        assert cfg.objective_args["lambda_l1"] == 100.0 and cfg.betas == (0.5, 0.999) and cfg.lr == 2e-4
        assert 0 < cfg.objective_args["epochs_decay"] < cfg.epochs
        G = models.build_generator(cfg.arch, cfg.generator).eval()
        D = models.build_discriminator(cfg.arch, cfg.discriminator).eval()
        with torch.no_grad():
            x = torch.randn(1, 3, 256, 256)
            y = G(x)
            assert y.shape == x.shape
            assert D(x, y).shape == (1, 1, 30, 30)


def test_mlp_gan_presets_follow_the_seeds():
    p = registry.get("gan").presets["mnist"]
    assert (p.z_dim, p.batch_size, p.lr, p.betas, p.epochs) == (64, 64, 2e-4, (0.9, 0.999), 100)
    assert p.objective == {"real_label": 0.9, "d_reduction": "sum"}
    d = registry.get("dcgan").presets["mnist"]
    assert (d.image_size, d.batch_size, d.lr, d.z_dim) == (64, 128, 2e-4, 100)
    c = registry.get("dcgan").presets["celeba"]
    assert (c.lr, c.betas, c.batch_size) == (5e-5, (0.5, 0.999), 64)
