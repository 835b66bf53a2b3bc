"""ganctl prune, ganctl rm --cache and the disk use of ganctl list (issue 17, item 4)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganctl.core import storedirs
from ganctl.store import layout, retention
from tests.conftest import error_line, invoke, train_in_own_store

# 4 epochs, every checkpoint kept, epoch 2 marked to keep forever
TRAIN = ["gan", "--dataset", "digits", "--epochs", "4", "--batch-size", "64", "--image-size", "8", "--name", "r",
         "--keep", "4", "--keep-epochs", "2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_in_own_store(tmp_path_factory, *TRAIN)


@pytest.fixture
def run(trained, _isolated_store) -> Path:
    """A copy of the trained run in this test's store."""
    shutil.copytree(trained, _isolated_store)
    return _isolated_store / "runs" / "gan" / "r"


def _ckpts(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def test_prune_keeps_the_newest_and_the_marked_epochs(run):
    assert _ckpts(run) == ["epoch_0001", "epoch_0002", "epoch_0003", "epoch_0004", "latest"]
    assert json.loads((run / "config.json").read_text())["keep_epochs"] == [2]
    r = invoke("prune", "gan/r", "--dry-run")
    assert r.exit_code == 0 and r.stdout == "", r.output
    lines = r.stderr.splitlines()
    assert [ln.split()[:2] for ln in lines[:4]] == [["keep", "epoch_0002"], ["keep", "epoch_0004"],
                                                    ["delete", "epoch_0001"], ["delete", "epoch_0003"]]
    assert "(marked)" in lines[0] and "(newest)" in lines[1] and "(older)" in lines[2]
    size = storedirs.dir_size(run / "checkpoints" / "epoch_0001") + storedirs.dir_size(run / "checkpoints" / "epoch_0003")
    assert lines[-1] == f"Dry run: would free {storedirs.human_size(size)}; no files were deleted."
    assert _ckpts(run)[:4] == ["epoch_0001", "epoch_0002", "epoch_0003", "epoch_0004"]

    assert "--yes" in error_line(invoke("prune", "r"))  # no terminal to confirm on
    assert _ckpts(run)[:4] == ["epoch_0001", "epoch_0002", "epoch_0003", "epoch_0004"]
    r = invoke("prune", "r", "--yes")
    assert r.exit_code == 0 and r.stdout.strip() == "gan/r", r.output
    assert f"Freed {storedirs.human_size(size)}." in r.stderr
    assert _ckpts(run) == ["epoch_0002", "epoch_0004", "latest"]
    r = invoke("prune", str(run), "--yes")  # by path; nothing left to do
    assert r.exit_code == 0 and "Nothing to prune in gan/r." in r.stderr
    r = invoke("prune", "r")  # nothing to delete: no confirmation is needed, even without a terminal
    assert r.exit_code == 0 and "Nothing to prune in gan/r." in r.stderr and "--yes" not in r.stderr
    # the pruned run resumes from its newest checkpoint
    r = invoke("train", "gan", "--resume", "--name", "r", "--epochs", "5")
    assert r.exit_code == 0 and "epoch 5/5" in r.stderr, r.output
    assert _ckpts(run) == ["epoch_0002", "epoch_0004", "epoch_0005", "latest"]  # the run's own --keep 4


def test_prune_keep_k_keeps_the_k_newest(run):
    r = invoke("prune", "r", "--keep", "2", "--yes")
    assert r.exit_code == 0, r.output
    assert _ckpts(run) == ["epoch_0002", "epoch_0003", "epoch_0004", "latest"]
    assert invoke("prune", "r", "--keep", "0", "--yes").exit_code == 2  # a usage error


def test_prune_deletes_damaged_checkpoints_and_leftovers_and_repoints_latest(run):
    root = run / "checkpoints"
    shutil.copytree(root / "epoch_0001", root / ".broken-epoch_0001")  # moved aside by a resume
    shutil.copytree(root / "epoch_0001", root / ".prune-epoch_0000")  # a prune killed mid-way
    (root / ".epoch_0005.abc.tmp").mkdir()  # a save killed mid-way
    (root / "latest").write_text("epoch_0003\n")  # a save killed before its `latest` write
    plan = retention.plan(run, keep=1, marked=(2,))
    assert plan.newest == root / "epoch_0004"
    assert [p.name for p in plan.gone] == ["epoch_0001", "epoch_0003", ".broken-epoch_0001", ".epoch_0005.abc.tmp",
                                           ".prune-epoch_0000"]
    r = invoke("prune", "r", "--dry-run")
    assert "damaged (moved aside by a resume)" in r.stderr and "left by a killed save" in r.stderr
    r = invoke("prune", "r", "-y")
    assert r.exit_code == 0, r.output
    assert _ckpts(run) == ["epoch_0002", "epoch_0004", "latest"]
    assert (root / "latest").read_text().strip() == "epoch_0004"


def test_a_prune_killed_midway_leaves_no_half_deleted_checkpoint(run, monkeypatch):
    real = shutil.rmtree
    cut = []

    def killed_midway(path, *a, **k):
        path = Path(path)
        if not cut and path.is_dir() and path.name.startswith(retention.PRUNED):
            cut.append(path)
            next(f for f in path.iterdir() if f.is_file()).unlink()  # one file deleted, then "killed"
            raise KeyboardInterrupt
        return real(path, *a, **k)

    monkeypatch.setattr(shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        retention.prune_run(run, 1, (2,))
    monkeypatch.setattr(shutil, "rmtree", real)
    visible = [p for p in (run / "checkpoints").iterdir() if p.is_dir() and not p.name.startswith(".")]
    for p in visible:  # every checkpoint under its own name is complete
        assert {"generator.safetensors", "discriminator.safetensors", "trainer.pt"} <= {f.name for f in p.iterdir()}
    assert cut and cut[0].name == ".prune-epoch_0001"
    r = invoke("prune", "r", "--yes")  # the next prune finishes the job
    assert r.exit_code == 0 and "left by a killed save" in r.stderr, r.output
    assert _ckpts(run) == ["epoch_0002", "epoch_0004", "latest"]


def test_prune_refuses_a_run_being_trained_and_a_damaged_one(run):
    with layout.run_lock(run, "gan/r"):
        msg = error_line(invoke("prune", "r", "--yes"))
    assert "run gan/r is being trained by another process" in msg and "then prune it" in msg
    assert len(_ckpts(run)) == 5
    (run / "config.json").write_text("{")
    assert "is damaged" in error_line(invoke("prune", "r", "--yes"))
    assert len(_ckpts(run)) == 5


def test_rm_cache_deletes_the_rebuildable_caches_only(run, _isolated_store):
    cache = _isolated_store / "datasets" / ".cache"
    cache.mkdir(parents=True)
    (cache / "folder-abc.safetensors").write_bytes(b"x" * 3000)
    (cache / ".folder-abd.safetensors.q1.tmp").write_bytes(b"x" * 10)  # being written by another process
    clf = _isolated_store / "evaluators" / "digits-16px-1ch" / "classifier.safetensors"
    clf.parent.mkdir(parents=True)
    clf.write_bytes(b"y" * 2000)
    r = invoke("rm", "--cache", "--dry-run")
    assert r.exit_code == 0 and r.stdout == "", r.output
    assert "decoded image folder  3.0 KB" in r.stderr and "evaluate's classifier  2.0 KB" in r.stderr
    assert "Dry run: would free 5.0 KB; no files were deleted." in r.stderr and clf.exists()
    assert "--yes" in error_line(invoke("rm", "--cache"))
    r = invoke("rm", "--cache", "--yes")
    assert r.exit_code == 0 and r.stdout.split() == [str(cache / "folder-abc.safetensors"), str(clf)], r.output
    assert [p.name for p in cache.iterdir()] == [".folder-abd.safetensors.q1.tmp"]
    assert not clf.parent.exists() and run.is_dir()
    r = invoke("rm", "--cache", "--yes")
    assert r.exit_code == 0 and "No caches in" in r.stderr
    r = invoke("rm")
    assert r.exit_code == 2 and "--cache" in r.output


def test_list_shows_disk_use_by_kind_and_what_prune_would_free(run, _isolated_store):
    (_isolated_store / "evaluators" / "x").mkdir(parents=True)
    (_isolated_store / "evaluators" / "x" / "classifier.safetensors").write_bytes(b"z" * 4000)
    (_isolated_store / "pretrained" / "p").mkdir(parents=True)
    (_isolated_store / "pretrained" / "p" / "generator.safetensors").write_bytes(b"z" * 7000)
    r = invoke("list")
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    row = next(ln for ln in lines if ln.startswith("gan/r "))
    old = storedirs.dir_size(run / "checkpoints" / "epoch_0001") + storedirs.dir_size(run / "checkpoints" / "epoch_0003")
    assert row.split()[-2:] == storedirs.human_size(old).split()  # the prunable column
    use = lines[lines.index(f"Disk use in {_isolated_store.resolve()}"):]
    kinds = {ln.split()[0]: " ".join(ln.split()[1:3]) for ln in use[2:]}
    assert kinds["caches"] == "4.0 KB" and kinds["pretrained"] == "7.0 KB"
    assert kinds["runs"] == storedirs.human_size(storedirs.dir_size(run.parent.parent))
    assert kinds["total"] == storedirs.human_size(storedirs.dir_size(_isolated_store))
    assert "ganctl rm --cache" in next(ln for ln in use if ln.startswith("caches"))


def test_resume_may_change_the_checkpoint_options(run):
    """--resume --keep 1 --keep-epochs 3 --save-every 2: stored in config.json, marks add up, and the
    next save prunes by the new rule."""
    r = invoke("train", "gan", "--resume", "--name", "r", "--epochs", "6", "--keep", "1", "--keep-epochs", "3",
               "--save-every", "2")
    assert r.exit_code == 0, r.output
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["keep"], cfg["keep_epochs"], cfg["save_every"]) == (1, [2, 3], 2)
    assert _ckpts(run) == ["epoch_0002", "epoch_0003", "epoch_0006", "latest"]  # 5 was not due
    assert "--keep must be at least 1" in error_line(invoke("train", "gan", "--resume", "--name", "r", "--keep", "0"))
