"""``ganctl train --log``: each tracker's own files, read back with its own library, hold the step
losses, the epoch summaries, the sample grids and the config; ``--resume`` goes on in the same
tracker run; a tracker sends only what the metrics log has read back; a missing library is one
line naming the pip command, said before torch is imported.

The library tests skip (saying which extra) where the library is missing; CI installs them all
(``ganctl[test]``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import error_line, invoke

ROOT = Path(__file__).resolve().parents[2]
# digits at 16x16 in batches of 512: 2 steps an epoch (rows read back at the epoch's end)
FAST = ("--dataset", "digits", "--image-size", "16", "--batch-size", "512")
E1, E2 = 2, 4  # the step at the end of epoch 1, and of epoch 2 (after --resume)


def _needs(library: str):
    from ganctl.trackers import TRACKERS, installed

    extra = next(t.extra for t in TRACKERS.values() if t.library == library)
    return pytest.mark.skipif(not installed(library), reason=f"{library} is not installed: pip install 'ganctl[{extra}]'")


def _train(*args):
    r = invoke("train", "dcgan", *args)
    assert r.exit_code == 0, r.output
    return r


def _run_dir(home: Path, name: str) -> Path:
    return home / "runs" / "dcgan" / name


def _losses(run: Path, key: str) -> dict[int, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[key] for r in rows if key in r}


# ------------------------------------------------------------------ what every tracker shares


def test_a_tracker_sends_only_rows_the_metrics_log_read_back(tmp_path):
    """No tracker reads a tensor: each step it sends the rows the metrics log has brought to the
    host (in blocks), then the epoch's summary and picture."""
    import torch

    from ganctl.callbacks import MetricsLog
    from ganctl.callbacks.trackers import TrackerCallback
    from ganctl.engine import Loop, Position

    sent = []

    class Recording(TrackerCallback):
        name = "recording"

        def start(self, step):
            sent.append(("start", step))

        def scalars(self, rows):
            sent.append(("scalars", rows))

        def picture(self, step, epoch, path):
            sent.append(("picture", step, epoch, path.name))

        def close(self, failed):
            sent.append(("close", failed))

    log = MetricsLog(tmp_path, resume=False, read_every=4)
    tracker = Recording(tmp_path, {"family": "dcgan", "run_name": "t"}, log, False, print)
    loop = Loop(epochs=1, batches=6, batch_size=2, position=Position())
    for cb in (log, tracker):
        cb.on_fit_start(loop)
        cb.on_epoch_start(loop)
    for step in range(1, 7):
        loop.position.step = loop.position.batch = step
        metrics = {"d_loss": torch.tensor(float(step)), "val_l1": torch.tensor(0.5)}
        log.on_step_end(loop, metrics)
        tracker.on_step_end(loop, metrics)
        assert len([s for s in sent if s[0] == "scalars"]) == (1 if step >= 4 else 0)  # a block, not a step
    assert sent[1] == ("scalars", [(s, {"train/d_loss": float(s), "val/l1": 0.5}) for s in range(1, 5)])
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "epoch_0001.png").write_bytes(b"png")
    loop.position.epoch, loop.position.batch, loop.epoch_seconds, loop.epoch_images = 1, 0, 2.0, 12
    for cb in (log, tracker):
        cb.on_epoch_end(loop)
    for cb in (log, tracker):
        cb.on_fit_end(loop)
    assert sent[2] == ("scalars", [(5, {"train/d_loss": 5.0, "val/l1": 0.5}), (6, {"train/d_loss": 6.0, "val/l1": 0.5})])
    assert sent[3][0] == "scalars" and sent[3][1][0][0] == 6
    assert sent[3][1][0][1]["epoch/d_loss"] == 3.5 and sent[3][1][0][1]["epoch/number"] == 1
    assert sent[4:] == [("picture", 6, 1, "epoch_0001.png"), ("close", False)]


def test_a_tracker_that_fails_mid_run_is_reported_once_and_training_goes_on(tmp_path):
    from ganctl.callbacks import MetricsLog
    from ganctl.callbacks.trackers import TrackerCallback
    from ganctl.engine import Loop, Position

    said = []

    class Failing(TrackerCallback):
        name = "failing"

        def start(self, step): ...

        def scalars(self, rows):
            raise ConnectionError("server went away\nsecond line")

    log = MetricsLog(tmp_path, resume=False, read_every=1)
    tracker = Failing(tmp_path, {}, log, False, said.append)
    loop = Loop(epochs=1, batches=3, batch_size=2, position=Position())
    log.on_fit_start(loop)
    tracker.on_fit_start(loop)
    for step in (1, 2, 3):
        loop.position.step = step
        log.on_step_end(loop, {"d_loss": 1.0})
        tracker.on_step_end(loop, {})
    tracker.on_fit_end(loop)
    log.on_fit_end(loop)
    assert said == ["--log failing stopped logging: server went away; training goes on, "
                    "metrics.jsonl and samples/ have everything"]


def test_resuming_a_logged_run_without_its_tracker_says_how_to_go_on(tmp_path):
    from ganctl.callbacks.trackers import build, store

    store(tmp_path, "wandb", {"id": "abc"})
    store(tmp_path, "tensorboard", {"dir": "tensorboard"})
    said = []
    assert build((), tmp_path, {}, None, True, said.append) == []
    assert said == ["this run was logged to tensorboard before: pass --log tensorboard with --resume to go on "
                    "logging it there",
                    "this run was logged to wandb before: pass --log wandb with --resume to go on logging it there"]
    assert json.loads((tmp_path / "trackers.json").read_text()) == {"wandb": {"id": "abc"}, "tensorboard": {"dir": "tensorboard"}}


def test_a_tracker_that_cannot_start_stops_the_run_before_its_first_step(monkeypatch):
    from ganctl.callbacks.trackers.tensorboard import TensorBoardTracker

    def refuse(self, step):
        raise RuntimeError("cannot open the store\ndetails")

    monkeypatch.setattr(TensorBoardTracker, "start", refuse)
    monkeypatch.setattr("ganctl.trackers.installed", lambda library: True)
    line = error_line(invoke("train", "dcgan", *FAST, "--log", "tensorboard", "--name", "x"))
    assert line == "error: --log tensorboard could not start: cannot open the store"


def test_unknown_tracker_names_the_known_ones():
    line = error_line(invoke("train", "dcgan", *FAST, "--log", "tensorbord"))
    assert "Did you mean 'tensorboard'" in line and "wandb" in line and "mlflow" in line


@pytest.mark.parametrize("library, extra", [("tensorboard", "tensorboard"), ("wandb", "wandb"), ("mlflow", "mlflow")])
def test_a_missing_library_is_one_line_naming_the_pip_command(monkeypatch, library, extra):
    monkeypatch.setitem(sys.modules, library, None)  # what `import LIBRARY` then raises ImportError for
    line = error_line(invoke("train", "dcgan", *FAST, "--log", library))
    assert line == f"error: --log {library} needs the {library} library: pip install 'ganctl[{extra}]'"


def test_a_missing_library_is_named_before_torch_is_imported(tmp_path):
    code = ("import sys; sys.modules['wandb'] = None; sys.argv = ['ganctl', 'train', 'dcgan', '--dataset', 'digits', "
            "'--log', 'wandb']\nfrom ganctl.cli import main\ntry:\n    main()\nexcept SystemExit as e:\n"
            "    print(e.code, 'torch' in sys.modules)")
    env = {**os.environ, "GANCTL_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.stdout.split() == ["1", "False"], r.stdout + r.stderr
    assert "pip install 'ganctl[wandb]'" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------ TensorBoard


@_needs("tensorboard")
def test_tensorboard_event_files_hold_the_losses_the_grids_and_the_config(_isolated_store):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = _train(*FAST, "--epochs", "1", "--name", "tb", "--log", "tensorboard")
    run = _run_dir(_isolated_store, "tb")
    assert f"tensorboard --logdir {run / 'tensorboard'}" in r.stderr
    _train("--resume", "--name", "tb", "--epochs", "2", "--log", "tensorboard")  # the same folder, on from step E1 + 1

    assert [p.parent.name for p in run.rglob("events.out.tfevents.*")] == ["tensorboard"] * 2
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    for key in ("d_loss", "g_loss"):
        logged = {e.step: e.value for e in ea.Scalars(f"train/{key}")}
        assert len(ea.Scalars(f"train/{key}")) == E2  # each step once, across the resume
        assert logged == pytest.approx(_losses(run, key), abs=1e-5)
    assert [e.step for e in ea.Scalars("epoch/g_loss")] == [E1, E2]
    assert [(e.step, e.value) for e in ea.Scalars("epoch/number")] == [(E1, 1), (E2, 2)]
    grids = ea.Images("samples")
    assert [(g.step, g.width) for g in grids] == [(E1, 584), (E2, 584)]  # the 8x8 grid of samples/epoch_*.png
    assert "_hparams_/experiment" in ea.PluginTagToContent("hparams")  # the config as hyperparameters
    assert '"family": "dcgan"' in ea.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()


# ------------------------------------------------------------------ Weights & Biases


def _wandb_records(path: Path):
    """The records of a .wandb file (W&B's LevelDB-style log of protobuf records)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunks = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        chunks = data[pos + 7:pos + 7 + length] if kind in (1, 2) else chunks + data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(chunks)
            yield record


def _wandb_history(run_folder: Path) -> list[dict]:
    (log,) = run_folder.glob("run-*.wandb")
    return [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in _wandb_records(log) if r.WhichOneof("record_type") == "history"]


@pytest.fixture
def _wandb_offline_env(monkeypatch, tmp_path):
    """No W&B credentials and no WANDB_MODE: the default path; W&B's own folders in tmp."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_BASE_URL", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")


@_needs("wandb")
def test_wandb_logs_offline_without_a_login_into_the_run_folder(_isolated_store, _wandb_offline_env):
    r = _train(*FAST, "--epochs", "1", "--name", "wb", "--log", "wandb")
    assert "no W&B API key and WANDB_MODE is not set: logging offline" in r.stderr
    assert r.stdout.strip().splitlines()[-1].endswith("wb")  # stdout is still just the run folder
    run = _run_dir(_isolated_store, "wb")
    wandb_id = json.loads((run / "trackers.json").read_text())["wandb"]["id"]
    _train("--resume", "--name", "wb", "--epochs", "2", "--log", "wandb")

    folders = sorted((run / "wandb").glob(f"offline-run-*-{wandb_id}"))
    assert len(folders) == 2  # the resumed session logs to the same W&B run id ('wandb sync' joins them)
    history = [h for f in folders for h in _wandb_history(f)]
    steps = {h["step"]: h for h in history if "train/g_loss" in h}
    assert sorted(steps) == list(range(1, E2 + 1))
    assert {s: h["train/g_loss"] for s, h in steps.items()} == pytest.approx(_losses(run, "g_loss"), abs=1e-5)
    assert [h["step"] for h in history if "epoch/d_loss" in h] == [E1, E2]
    images = [h for h in history if h.get("samples/_type") == "image-file"]
    assert [h["step"] for h in images] == [E1, E2]
    assert all((f / "files" / h["samples/path"]).is_file() for f in folders for h in _wandb_history(f)
               if h.get("samples/_type"))
    (first,) = [r for r in _wandb_records(next(folders[0].glob("run-*.wandb"))) if r.WhichOneof("record_type") == "run"]
    config = {u.key: json.loads(u.value_json) for u in first.run.config.update}
    assert config["family"] == "dcgan" and config["batch_size"] == 512 and first.run.display_name == "dcgan/wb"


# ------------------------------------------------------------------ MLflow


@_needs("mlflow")
def test_mlflow_file_store_is_read_back_with_mlflow_client(_isolated_store, monkeypatch, tmp_path):
    from mlflow import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store on request
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    _train(*FAST, "--epochs", "1", "--name", "ml", "--log", "mlflow")
    run = _run_dir(_isolated_store, "ml")
    stored = json.loads((run / "trackers.json").read_text())["mlflow"]
    assert stored["tracking_uri"] == uri
    _train("--resume", "--name", "ml", "--epochs", "2", "--log", "mlflow")  # --epochs changes: a param that is kept
    assert json.loads((run / "trackers.json").read_text())["mlflow"] == stored  # the same MLflow run

    client = MlflowClient(uri)
    got = client.get_run(stored["run_id"])
    assert got.info.status == "FINISHED" and got.info.run_name == "dcgan/ml"
    assert client.get_experiment(got.info.experiment_id).name == "ganctl"
    for key in ("d_loss", "g_loss"):
        history = {m.step: m.value for m in client.get_metric_history(stored["run_id"], f"train/{key}")}
        assert history == pytest.approx(_losses(run, key), abs=1e-5) and sorted(history) == list(range(1, E2 + 1))
    assert [m.step for m in client.get_metric_history(stored["run_id"], "epoch/g_loss")] == [E1, E2]
    params = got.data.params
    assert params["family"] == "dcgan" and params["batch_size"] == "512" and params["epochs"] == "1"
    assert params["generator.features"] == str(json.loads((run / "config.json").read_text())["generator"]["features"])
    artifacts = {a.path for a in client.list_artifacts(stored["run_id"])}
    assert "config.json" in artifacts and "images" in artifacts
    config = client.download_artifacts(stored["run_id"], "config.json", str(tmp_path))
    assert json.loads(Path(config).read_text())["epochs"] == 2  # rewritten on resume
    pictures = [a.path for a in client.list_artifacts(stored["run_id"], "images") if not a.path.endswith("compressed.webp")]
    assert sorted(p.split("+step+")[1].split("+")[0] for p in pictures if p.endswith(".png")) == [str(E1), str(E2)]
