"""Checkpoints are written by a background thread (issue 22, item 2): training goes on while a
snapshot of the save point is written, the next save and the end of the fit wait for it, and a
failed write stops training at the next save point with its own error."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ganctl.core.errors import NoSpaceError
from ganctl.store import checkpoint, genspec
from ganctl.train.callbacks import Checkpointer, PublishCheckpoint
from ganctl.train.engine import Loop, Position


class _Objective:
    """The part of an objective a Checkpointer saves and restores: two Adams (also used by
    tests/test_divergence.py)."""

    def __init__(self, G, D):
        self.opts = {"G": torch.optim.Adam(G.parameters()), "D": torch.optim.Adam(D.parameters())}

    def optimizers(self):
        return self.opts

    def state_dict(self):
        return {"optimizers": {k: o.state_dict() for k, o in self.opts.items()}, "scalers": {}, "state": {}}

    def load_state_dict(self, state):
        for k, o in self.opts.items():
            o.load_state_dict(state["optimizers"][k])


def _saver(tmp_path, **kw):
    torch.manual_seed(0)
    G, D = nn.Linear(4, 3), nn.Linear(3, 1)
    G.weight.sum().backward()
    obj = _Objective(G, D)
    obj.opts["G"].step()  # optimizer moments that training goes on changing
    spec = genspec.make(family="gan", arch="mlp", generator={"z_dim": 4, "channels": 1, "image_size": 3})
    return Checkpointer(tmp_path / "run", {"generator": G, "discriminator": D}, checkpoint.PAIR_FILES,
                        {"generator": spec}, obj, keep=5, **kw), G, obj


def _gated_write(monkeypatch):
    """checkpoint.write held until the test opens the gate; returns (gate, tags written)."""
    gate, written, real = threading.Event(), [], checkpoint.write

    def write(run_dir, tag, *args, **kw):
        assert gate.wait(10)
        written.append(tag)
        return real(run_dir, tag, *args, **kw)

    monkeypatch.setattr(checkpoint, "write", write)
    return gate, written


def test_training_goes_on_while_the_snapshot_is_written(tmp_path, monkeypatch):
    gate, written = _gated_write(monkeypatch)
    saver, G, obj = _saver(tmp_path)
    before = G.weight.detach().clone()
    moment = obj.opts["G"].state[G.weight]["exp_avg"].clone()
    saver.save("epoch_0001", Position(1, 0, 4))
    assert written == []  # save returned while the write waits
    with torch.no_grad():  # the next steps change the weights and moments in place
        G.weight.add_(1.0)
        obj.opts["G"].state[G.weight]["exp_avg"].add_(1.0)
    gate.set()
    saver.on_fit_end(Loop(epochs=1, batches=1, batch_size=1, position=Position(1, 0, 4)))
    ckpt = tmp_path / "run" / "checkpoints" / "epoch_0001"
    assert written == ["epoch_0001"] and saver.last == ckpt
    assert torch.equal(load_file(ckpt / checkpoint.GENERATOR)["weight"], before)
    saved = checkpoint.load_trainer(ckpt).optimizers["G"]["state"][0]["exp_avg"]
    assert torch.equal(saved, moment)
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "epoch_0001"


def test_the_next_save_waits_for_the_one_in_flight(tmp_path, monkeypatch):
    gate, written = _gated_write(monkeypatch)
    saver, _, _ = _saver(tmp_path)
    saver.save("epoch_0001", Position(1, 0, 4))
    second = threading.Thread(target=saver.save, args=("epoch_0002", Position(2, 0, 8)))
    second.start()
    second.join(0.3)
    assert second.is_alive() and written == []  # blocked behind the first write
    gate.set()
    second.join(10)
    saver.wait()
    assert written == ["epoch_0001", "epoch_0002"]


def test_a_background_save_is_published_only_once_the_epochs_rows_are_written(tmp_path, monkeypatch):
    """The write goes as far as its synced temporary folder, then waits for publish (the callback
    after the metrics log): a kill before the log has the epoch's rows leaves the previous
    checkpoint the newest, so the resume trains that epoch again and writes them."""
    synced, real_sync = threading.Event(), checkpoint._fsync_dir

    def sync(path):
        real_sync(path)
        if path.name.endswith(".tmp"):  # the temporary folder itself: the write's last step before the wait
            synced.set()

    monkeypatch.setattr(checkpoint, "_fsync_dir", sync)
    saver, _, _ = _saver(tmp_path)
    saver.save("epoch_0001", Position(1, 0, 4))
    assert synced.wait(10)
    root = tmp_path / "run" / "checkpoints"
    time.sleep(0.3)  # time to rename it, were it not held
    assert not (root / "epoch_0001").exists() and not (root / "latest").exists()
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")]  # written, not yet in place
    PublishCheckpoint(saver).on_epoch_end(None)
    saver._writing.result(10)
    assert (root / "latest").read_text().strip() == "epoch_0001" and (root / "epoch_0001" / checkpoint.TRAINER).is_file()
    saver.wait()


def test_a_failed_write_stops_training_at_the_next_save_point(tmp_path, monkeypatch):
    def full(run_dir, tag, *args, **kw):
        raise NoSpaceError(run_dir / "checkpoints" / tag)

    monkeypatch.setattr(checkpoint, "write", full)
    saver, _, _ = _saver(tmp_path)
    saver.save("epoch_0001", Position(1, 0, 4))  # returns: the error comes from the thread
    with pytest.raises(NoSpaceError):
        saver.save("epoch_0002", Position(2, 0, 8))
    saver.save("epoch_0003", Position(3, 0, 12))
    with pytest.raises(NoSpaceError):
        saver.on_fit_end(Loop(epochs=3, batches=1, batch_size=1, position=Position(3, 0, 12)))


def test_in_the_callers_thread_when_asked(tmp_path, monkeypatch):
    threads = []
    real = checkpoint.write
    monkeypatch.setattr(checkpoint, "write", lambda *a: threads.append(threading.current_thread()) or real(*a))
    saver, _, _ = _saver(tmp_path, background=False)
    saver.save("epoch_0001", Position(1, 0, 4))
    assert threads == [threading.current_thread()]
    assert (tmp_path / "run" / "checkpoints" / "epoch_0001" / checkpoint.TRAINER).is_file()


def test_a_host_copy_keeps_strides_and_shares_no_memory():
    w = torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    state = {"w": w, "nested": [w[0], (torch.tensor(3),)], "lr": 0.1}
    copy = checkpoint.host_copy(state)
    assert copy["w"].stride() == w.stride() and torch.equal(copy["w"], w)
    assert copy["w"].data_ptr() != w.data_ptr() and copy["nested"][0].data_ptr() != w.data_ptr()
    assert isinstance(copy["nested"][1], tuple) and copy["lr"] == 0.1


def test_a_row_major_host_copy_is_one_contiguous_copy():
    w = torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    copy = checkpoint.host_copy({"w": w}, row_major=True)["w"]
    assert copy.is_contiguous() and torch.equal(copy, w) and copy.data_ptr() != w.data_ptr()


def test_the_trainer_state_is_saved_without_crc_loads_the_same_and_the_setting_is_put_back(tmp_path):
    get = getattr(torch.serialization, "get_crc32_options", None)
    if get is None:
        pytest.skip("this PyTorch always computes the CRC")
    import zipfile

    state = {"m": torch.randn(64, 3, 4, 4).contiguous(memory_format=torch.channels_last), "step": 7}
    before = get()
    checkpoint._save_without_crc(state, tmp_path / "t.pt")
    assert get() == before
    with zipfile.ZipFile(tmp_path / "t.pt") as z:  # the records carry no CRC: none was computed
        assert {i.CRC for i in z.infolist() if i.filename.endswith("/data/0")} == {0}
    back = torch.load(tmp_path / "t.pt", weights_only=True)
    assert torch.equal(back["m"], state["m"]) and back["m"].stride() == state["m"].stride() and back["step"] == 7
