"""Checkpoints are never stale, truncated or half-deleted; reading a position loads no optimizer;
the fp16 loss-scaler state survives a resume (issue 15, item 3)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ganctl import models
from ganctl.runtime import runtime
from ganctl.store import checkpoint, genspec, layout, retention
from ganctl.train import objectives, trainer
from ganctl.train.callbacks import Checkpointer
from tests.conftest import invoke
from tests.test_engine import CPU, _InterruptAt, tiny_cfg

COMPLETE = {checkpoint.GENERATOR, checkpoint.DISCRIMINATOR, checkpoint.TRAINER}


@pytest.fixture(scope="module")
def digits16():
    from ganctl.data import datasets

    data = datasets.load("digits", 16)
    data.images, data.labels = data.images[:96], data.labels[:96]
    return data


def _nets(seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    return nn.Linear(4, 3), nn.Linear(3, 1)


def _state(step: int) -> checkpoint.TrainerState:
    return checkpoint.TrainerState(epoch=step, batch=0, step=step, optimizers={}, rng_cpu=torch.get_rng_state(), rng_cuda=[])


def _save(run: Path, epoch: int, seed: int | None = None, keep: int = 2, tag: str | None = None, **kw) -> Path:
    G, D = _nets(epoch if seed is None else seed)
    spec = genspec.make(family="gan", arch="mlp", generator={"z_dim": 4, "channels": 1, "image_size": 3})
    return checkpoint.save(run, tag or f"epoch_{epoch:04d}", {"generator": G, "discriminator": D}, checkpoint.PAIR_FILES,
                           {"generator": spec}, _state(epoch), keep, **kw)


def _latest(run: Path) -> str:
    return (run / "checkpoints" / "latest").read_text().strip()


def _visible(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir() and not p.name.startswith("."))


def test_a_save_cut_before_latest_is_redone(tmp_path, monkeypatch):
    """A crash between the folder's rename and the `latest` write: the next save of that tag
    must not be skipped, or `latest` stays on the previous epoch forever."""
    run = tmp_path / "run"
    _save(run, 1)
    real = checkpoint.atomic_write
    calls = []

    def crash_once(dest, data):
        calls.append(dest)
        if len(calls) == 1:
            raise OSError("killed")
        return real(dest, data)

    monkeypatch.setattr(checkpoint, "atomic_write", crash_once)
    with pytest.raises(OSError):
        _save(run, 2)
    assert _latest(run) == "epoch_0001" and (run / "checkpoints" / "epoch_0002").is_dir()
    _save(run, 2, seed=22)  # the resumed run saves the same position again
    assert _latest(run) == "epoch_0002"
    expected = _nets(22)[0].state_dict()
    got = load_file(run / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR)
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_the_next_train_points_latest_at_a_checkpoint_whose_latest_write_was_cut(tmp_path, monkeypatch):
    """The same crash, then the resume's clean-up: `latest` names the newest complete checkpoint
    before anything is loaded, so the resume continues from it instead of redoing it."""
    run = tmp_path / "run"
    _save(run, 1)
    real = checkpoint.atomic_write

    def crash(dest, data):
        if dest.name == "latest" and b"epoch_0002" in data:
            raise OSError("killed")
        return real(dest, data)

    monkeypatch.setattr(checkpoint, "atomic_write", crash)
    with pytest.raises(OSError):
        _save(run, 2)
    monkeypatch.setattr(checkpoint, "atomic_write", real)
    assert _latest(run) == "epoch_0001"
    checkpoint.clean(run)
    assert _latest(run) == "epoch_0002"
    assert checkpoint.candidates(run)[0].name == "epoch_0002"
    checkpoint.clean(run)  # nothing newer: left alone
    assert _latest(run) == "epoch_0002"


def test_a_truncated_checkpoint_is_rewritten_by_the_next_save(tmp_path):
    run = tmp_path / "run"
    _save(run, 1)
    g = run / "checkpoints" / "epoch_0001" / checkpoint.GENERATOR
    g.write_bytes(g.read_bytes()[:50])
    _save(run, 1, seed=5)
    got = load_file(g)
    expected = _nets(5)[0].state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_resume_moves_an_unreadable_checkpoint_aside(digits16, tmp_path):
    cfg = replace(tiny_cfg("gan", digits16, epochs=2), keep=2)
    run = tmp_path / "run"
    trainer.train(cfg, digits16, run, CPU)
    g = run / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR
    good = {k: v.clone() for k, v in load_file(g).items()}
    g.write_bytes(g.read_bytes()[:100])  # truncated, as by a full disk
    rep = _InterruptAt(-1, -1)
    trainer.train(cfg, digits16, run, CPU, reporter=rep, resume=True)
    assert any("skipping checkpoint epoch_0002" in m and ".broken-epoch_0002" in m for m in rep.messages)
    assert (run / "checkpoints" / ".broken-epoch_0002").is_dir()  # kept for inspection, no candidate
    assert [c.name for c in checkpoint.candidates(run)] == ["epoch_0002", "epoch_0001"]
    again = load_file(g)  # retrained from epoch_0001, bit-identical to the lost one
    assert all(torch.equal(again[k], good[k]) for k in good)


def test_sample_falls_back_to_the_newest_readable_checkpoint(digits16, tmp_path):
    cfg = replace(tiny_cfg("gan", digits16, epochs=2), run_name="t", keep=2)
    run = layout.run_path("gan", "t")
    trainer.train(cfg, digits16, run, CPU)
    g = run / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR
    g.write_bytes(g.read_bytes()[:-10])
    r = invoke("sample", "gan", "--run", "t", "-n", 4, "-o", tmp_path / "s.png", "--seed", 0, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s.png").is_file()
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "epoch_0002" in warnings[0] and "epoch_0001" in warnings[0], r.stderr


def test_an_interrupted_prune_leaves_no_half_deleted_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    _save(run, 1)
    _save(run, 2)
    real = shutil.rmtree
    cut = []

    def killed_midway(path, *a, **k):
        path = Path(path)
        if not cut and path.is_dir():  # deletes one file, then the process "dies"
            cut.append(path)
            next(f for f in path.iterdir() if f.is_file()).unlink()
            raise KeyboardInterrupt
        return real(path, *a, **k)

    monkeypatch.setattr(shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        _save(run, 3)  # prunes epoch_0001
    monkeypatch.setattr(shutil, "rmtree", real)
    assert cut and cut[0].name.startswith(".")
    for name in _visible(run):
        assert COMPLETE <= {f.name for f in (run / "checkpoints" / name).iterdir()}, name
    assert _latest(run) == "epoch_0003"
    assert checkpoint.clean(run) == [cut[0]] and not cut[0].exists()
    assert _visible(run) == ["epoch_0002", "epoch_0003"]


def test_resume_cleans_what_killed_saves_left(digits16, tmp_path):
    cfg = replace(tiny_cfg("gan", digits16, epochs=1), keep=2)
    run = tmp_path / "run"
    trainer.train(cfg, digits16, run, CPU)
    root = run / "checkpoints"
    leftovers = [root / ".epoch_0002.k3j2.tmp", root / ".old-epoch_0001", root / ".prune-epoch_0000"]
    for d in leftovers:
        (d / "x").parent.mkdir()
        (d / "x").write_bytes(b"half")
    (root / ".latest.abc.tmp").write_bytes(b"epo")
    keep = [root / ".broken-epoch_0007", run / ".lock"]
    keep[0].mkdir()
    keep[1].write_bytes(b"")
    trainer.train(replace(cfg, epochs=2), digits16, run, CPU, resume=True)
    assert sorted(p.name for p in root.iterdir()) == [".broken-epoch_0007", "epoch_0001", "epoch_0002", "latest"]
    assert keep[1].exists()


def test_reading_positions_does_not_load_the_optimizer_states(tmp_path, monkeypatch):
    run = tmp_path / "run"
    for e in (1, 2):
        _save(run, e)
    (run / "checkpoints" / "latest").unlink()  # order by position alone
    loads = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a) or real(*a, **k))
    assert [c.name for c in checkpoint.candidates(run)] == ["epoch_0002", "epoch_0001"]
    assert retention._position(run / "checkpoints" / "epoch_0002") == (2, 0)
    assert loads == []
    # a checkpoint saved before position.json existed: trainer.pt, memory-mapped
    (run / "checkpoints" / "epoch_0002" / checkpoint.POSITION).unlink()
    assert checkpoint.read_position(run / "checkpoints" / "epoch_0002") == {"epoch": 2, "batch": 0, "step": 2}


def test_an_old_trainer_file_without_scalers_or_mps_state_loads(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    torch.save({"epoch": 1, "batch": 0, "step": 6, "optimizers": {}, "rng_cpu": torch.get_rng_state(),
                "rng_cuda": [], "ganctl_version": "0.1.0"}, ck / checkpoint.TRAINER)
    state = checkpoint.load_trainer(ck)
    assert (state.step, state.scalers, state.rng_mps) == (6, {}, None)


def test_the_fp16_loss_scaler_state_survives_a_resume(digits16, tmp_path, monkeypatch):
    rt = runtime.Runtime(torch.device("cpu"), "fp16")
    cfg = tiny_cfg("gan", digits16, epochs=1)
    built = []
    real_build = objectives.build
    monkeypatch.setattr(objectives, "build", lambda *a, **k: built.append(real_build(*a, **k)) or built[-1])
    trainer.train(cfg, digits16, tmp_path / "run", rt)
    trained = [s.state_dict() for s in built[0].scalers().values()]
    assert trained[0] != torch.amp.GradScaler("cpu").state_dict()  # it did count steps
    G = models.build_generator(cfg.arch, cfg.generator)
    D = models.build_discriminator(cfg.arch, cfg.discriminator)
    fresh = real_build({"generator": G, "discriminator": D}, cfg, rt)
    nets = {"generator": G, "discriminator": D}
    Checkpointer(tmp_path / "run", nets, checkpoint.PAIR_FILES, {}, fresh).restore(_InterruptAt(-1, -1).message)
    assert [s.state_dict() for s in fresh.scalers().values()] == trained


class _DieAt(_InterruptAt):
    """A hard stop (a second Ctrl-C, or a kill) in the middle of the first epoch."""

    def step(self, epoch, batch, metrics):
        if (epoch, batch) == self.at:
            raise KeyboardInterrupt


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(digits16, tmp_path):
    cfg = tiny_cfg("gan", digits16, epochs=1)
    trainer.train(cfg, digits16, tmp_path / "full", CPU)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg, digits16, tmp_path / "cut", CPU, reporter=_DieAt(0, 3))
    rep = _InterruptAt(-1, -1)
    res = trainer.train(cfg, digits16, tmp_path / "cut", CPU, reporter=rep, resume=True)
    assert res.epochs_done == 1 and any("starting it from the beginning" in m for m in rep.messages)
    for name in (checkpoint.GENERATOR, checkpoint.DISCRIMINATOR):
        a, b = (load_file(tmp_path / r / "checkpoints" / "epoch_0001" / name) for r in ("full", "cut"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == (tmp_path / "full" / "metrics.jsonl").read_text()


# ---------------------------------------------------------------- retention (--save-every, --keep, --keep-epochs)


def _folders(*names: str) -> list[Path]:
    return [Path("ck") / n for n in names]


def test_retention_keeps_the_newest_the_keep_newest_epochs_and_the_marked_ones():
    eps = _folders("epoch_0001", "epoch_0002", "epoch_0003", "epoch_0010", "step_00000020", ".broken-epoch_0004", "notes")
    newest = Path("ck/epoch_0010")
    names = lambda ps: [p.name for p in ps]  # noqa: E731
    assert names(retention.to_prune(eps, newest)) == ["epoch_0001", "epoch_0002", "epoch_0003", "step_00000020"]
    assert names(retention.to_prune(eps, newest, keep=2)) == ["epoch_0001", "epoch_0002", "step_00000020"]
    assert names(retention.to_prune(eps, newest, keep=1, marked={2})) == ["epoch_0001", "epoch_0003", "step_00000020"]
    # an interrupt checkpoint that is the newest is kept, and counts among the kept
    step = Path("ck/step_00000020")
    assert names(retention.to_prune(eps, step)) == ["epoch_0001", "epoch_0002", "epoch_0003", "epoch_0010"]
    assert names(retention.to_prune(eps, step, keep=2)) == ["epoch_0001", "epoch_0002", "epoch_0003"]
    with pytest.raises(ValueError):
        retention.to_prune(eps, newest, keep=0)


def test_save_every_saves_the_due_epochs_the_last_and_the_marked():
    assert [e for e in range(1, 8) if retention.due(e, 7, 3)] == [3, 6, 7]
    assert [e for e in range(1, 8) if retention.due(e, 7, 5, marked={2})] == [2, 5, 7]


@pytest.mark.parametrize("text", ["", "x", "1,x", "0", "-3", "1.5", "1;2"])
def test_keep_epochs_must_be_positive_whole_numbers(text):
    from ganctl.core.errors import GanctlError

    with pytest.raises(GanctlError, match="--keep-epochs takes epoch numbers"):
        retention.parse_epochs(text)
    assert retention.parse_epochs(" 20, 10,10 ") == (10, 20)


def test_a_save_prunes_to_keep_and_never_a_marked_epoch(tmp_path):
    run = tmp_path / "run"
    for e in range(1, 5):
        _save(run, e, keep=1, marked={2})
    assert _visible(run) == ["epoch_0002", "epoch_0004"]
    _save(run, 5, keep=2, marked={2})
    assert _visible(run) == ["epoch_0002", "epoch_0004", "epoch_0005"]
    _save(run, 5, keep=1, tag="step_00000006")  # an interrupt checkpoint is the newest: alone kept
    assert _visible(run) == ["step_00000006"] and _latest(run) == "step_00000006"
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_save_every_and_keep_epochs_in_a_run(digits16, tmp_path):
    cfg = replace(tiny_cfg("gan", digits16, epochs=5), save_every=2, keep=5, keep_epochs=(1,))
    run = tmp_path / "run"
    res = trainer.train(cfg, digits16, run, CPU)
    assert res.checkpoint.name == "epoch_0005"
    assert _visible(run) == ["epoch_0001", "epoch_0002", "epoch_0004", "epoch_0005"]  # 3 was not due
    assert len(list((run / "samples").iterdir())) == 5  # pictures every epoch still
    trainer.train(replace(cfg, epochs=7, keep=1), digits16, run, CPU, resume=True)
    assert _visible(run) == ["epoch_0001", "epoch_0007"]  # the marked one stays


def test_ctrl_c_after_an_epoch_save_every_skipped_saves_it(digits16, tmp_path):
    """A Ctrl-C in an epoch's last batch ends that epoch, then stops: the epoch is saved although
    --save-every did not call for it, and resuming from it is exact."""
    cfg = replace(tiny_cfg("gan", digits16, epochs=3), save_every=5)
    trainer.train(cfg, digits16, tmp_path / "full", CPU)
    assert _visible(tmp_path / "full") == ["epoch_0003"]
    res = trainer.train(cfg, digits16, tmp_path / "cut", CPU, reporter=_InterruptAt(0, 6))  # 6 batches an epoch
    assert res.interrupted and res.checkpoint.name == "epoch_0001" and _latest(tmp_path / "cut") == "epoch_0001"
    trainer.train(cfg, digits16, tmp_path / "cut", CPU, resume=True)
    for name in (checkpoint.GENERATOR, checkpoint.DISCRIMINATOR):
        a, b = (load_file(tmp_path / r / "checkpoints" / "epoch_0003" / name) for r in ("full", "cut"))
        assert all(torch.equal(a[k], b[k]) for k in a)
