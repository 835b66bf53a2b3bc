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
from types import SimpleNamespace

import pytest

from tests.conftest import error_line, invoke

ROOT = Path(__file__).resolve().parents[2]
# digits at 16x16 in batches of 512: 2 steps an epoch (rows read back at the epoch's end)
FAST = ("--dataset", "digits", "--image-size", "16", "--batch-size", "512")
E1, E2 = 2, 4  # the step at the end of epoch 1, and of epoch 2 (after --resume)


def _needs(library: str):
    from ganctl.train.tracking import TRACKERS, installed

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

    from ganctl.train.callbacks import MetricsLog
    from ganctl.train.callbacks.trackers import TrackerCallback
    from ganctl.train.engine import Loop, Position

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
    from ganctl.train.callbacks import MetricsLog
    from ganctl.train.callbacks.trackers import TrackerCallback
    from ganctl.train.engine import Loop, Position

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
    from ganctl.train.callbacks.trackers import build, store

    store(tmp_path, "wandb", {"id": "abc"})
    store(tmp_path, "tensorboard", {"dir": "tensorboard"})
    said = []
    assert build((), tmp_path, {}, None, True, said.append) == []
    assert said == ["this run was logged to tensorboard before: pass --log tensorboard with --resume to go on "
                    "logging it there",
                    "this run was logged to wandb before: pass --log wandb with --resume to go on logging it there"]
    assert json.loads((tmp_path / "trackers.json").read_text()) == {"wandb": {"id": "abc"}, "tensorboard": {"dir": "tensorboard"}}


def test_a_tracker_that_cannot_start_stops_the_run_before_its_first_step(monkeypatch):
    from ganctl.train.callbacks.trackers.tensorboard import TensorBoardTracker

    def refuse(self, step):
        raise RuntimeError("cannot open the store\ndetails")

    monkeypatch.setattr(TensorBoardTracker, "start", refuse)
    monkeypatch.setattr("ganctl.train.tracking.installed", lambda library: True)
    line = error_line(invoke("train", "dcgan", *FAST, "--log", "tensorboard", "--name", "x"))
    assert line == "error: --log tensorboard could not start: cannot open the store"


def test_a_tracker_that_cannot_start_leaves_no_run_folder_behind(monkeypatch, _isolated_store):
    from ganctl.core.errors import GanctlError
    from ganctl.train.callbacks.trackers.tensorboard import TensorBoardTracker

    def refuse(self, step):
        raise GanctlError("--log tensorboard could not start: the folder is not writable")

    monkeypatch.setattr(TensorBoardTracker, "start", refuse)
    monkeypatch.setattr("ganctl.train.tracking.installed", lambda library: True)
    for _ in range(2):  # each failed start used to leave a folder, and took the next numbered name
        line = error_line(invoke("train", "dcgan", *FAST, "--epochs", "1", "--log", "tensorboard"))
        assert line == "error: --log tensorboard could not start: the folder is not writable"
    runs = _isolated_store / "runs" / "dcgan"
    assert not runs.exists() or not list(runs.iterdir()), list(runs.iterdir())
    # a run that exists keeps everything when a resume's tracker fails to start
    _train(*FAST, "--epochs", "1", "--name", "kept")
    before = sorted(p.name for p in _run_dir(_isolated_store, "kept").iterdir())
    error_line(invoke("train", "dcgan", "--resume", "--name", "kept", "--epochs", "2", "--log", "tensorboard"))
    assert set(before) <= {p.name for p in _run_dir(_isolated_store, "kept").iterdir()}
    assert (_run_dir(_isolated_store, "kept") / "config.json").is_file()


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


# ------------------------------------------------------------------ one run, every tracker installed


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One dcgan run logged to every tracker whose library is installed: 1 epoch, then --resume
    for a 2nd. W&B on its default path (no credentials, no WANDB_MODE: offline); MLflow on a file
    store in a temporary folder."""
    from ganctl.train.tracking import TRACKERS, installed

    names = [n for n, t in TRACKERS.items() if installed(t.library)]
    if not names:
        pytest.skip("no tracker library is installed: pip install 'ganctl[tensorboard,wandb,mlflow]'")
    root = tmp_path_factory.mktemp("logged")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(root / "home"))
        mp.setenv("NO_COLOR", "1")
        for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_BASE_URL",
                     "WANDB_IDENTITY_TOKEN_FILE", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
            mp.delenv(name, raising=False)
        mp.setenv("NETRC", str(root / "no-netrc"))  # no `wandb login` either
        for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            mp.setenv(name, str(root / "wandb-home" / name.lower()))
        mp.setenv("WANDB_SILENT", "true")
        uri = (root / "mlruns").as_uri()
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store on request
        log = [x for n in names for x in ("--log", n)]
        first = _train(*FAST, "--epochs", "1", "--name", "all", *log)
        run = _run_dir(root / "home", "all")
        ids = json.loads((run / "trackers.json").read_text())
        # --epochs changes on resume: a config value that MLflow keeps as a param of the first session
        second = _train("--resume", "--name", "all", "--epochs", "2", *log)
    return SimpleNamespace(run=run, first=first, second=second, ids=ids, mlflow_uri=uri, tmp=root)


# ------------------------------------------------------------------ TensorBoard


@_needs("tensorboard")
def test_tensorboard_event_files_hold_the_losses_the_grids_and_the_config(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = logged.run
    assert f"tensorboard --logdir {run / 'tensorboard'}" in logged.first.stderr
    # the resumed session writes on in the same folder
    assert [p.parent.name for p in run.rglob("events.out.tfevents.*")] == ["tensorboard"] * 2
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    for key in ("d_loss", "g_loss"):
        logged_values = {e.step: e.value for e in ea.Scalars(f"train/{key}")}
        assert len(ea.Scalars(f"train/{key}")) == E2  # each step once, across the resume
        assert logged_values == pytest.approx(_losses(run, key), abs=1e-5)
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


@_needs("wandb")
def test_wandb_logs_offline_without_a_login_into_the_run_folder(logged):
    run = logged.run
    assert "no W&B API key and WANDB_MODE is not set: logging offline" in logged.first.stderr
    assert logged.first.stdout.strip().splitlines() == [str(run)]  # stdout is still just the run folder
    wandb_id = logged.ids["wandb"]["id"]
    folders = sorted((run / "wandb").glob(f"offline-run-*-{wandb_id}"))
    assert len(folders) == 2  # the resumed session logs to the same W&B run id ('wandb sync' joins them)
    history = [h for f in folders for h in _wandb_history(f)]
    steps = {h["step"]: h for h in history if "train/g_loss" in h}
    assert sorted(steps) == list(range(1, E2 + 1))
    assert {s: h["train/g_loss"] for s, h in steps.items()} == pytest.approx(_losses(run, "g_loss"), abs=1e-5)
    assert [h["step"] for h in history if "epoch/d_loss" in h] == [E1, E2]
    images = [(f, h) for f in folders for h in _wandb_history(f) if h.get("samples/_type") == "image-file"]
    assert [h["step"] for _, h in images] == [E1, E2]
    assert all((f / "files" / h["samples/path"]).is_file() for f, h in images)
    (first,) = [r for r in _wandb_records(next(folders[0].glob("run-*.wandb"))) if r.WhichOneof("record_type") == "run"]
    config = {u.key: json.loads(u.value_json) for u in first.run.config.update}
    assert config["family"] == "dcgan" and config["batch_size"] == 512 and first.run.display_name == "dcgan/all"


# ------------------------------------------------------------------ MLflow


@_needs("mlflow")
def test_mlflow_file_store_is_read_back_with_mlflow_client(logged):
    from mlflow import MlflowClient

    run, ids = logged.run, logged.ids["mlflow"]
    assert ids["tracking_uri"] == logged.mlflow_uri
    assert json.loads((run / "trackers.json").read_text())["mlflow"] == ids  # the resume went on in the same MLflow run
    client = MlflowClient(logged.mlflow_uri)
    got = client.get_run(ids["run_id"])
    assert got.info.status == "FINISHED" and got.info.run_name == "dcgan/all"
    assert client.get_experiment(got.info.experiment_id).name == "ganctl"
    for key in ("d_loss", "g_loss"):
        history = {m.step: m.value for m in client.get_metric_history(ids["run_id"], f"train/{key}")}
        assert history == pytest.approx(_losses(run, key), abs=1e-5) and sorted(history) == list(range(1, E2 + 1))
    assert [m.step for m in client.get_metric_history(ids["run_id"], "epoch/g_loss")] == [E1, E2]
    params = got.data.params
    assert params["family"] == "dcgan" and params["batch_size"] == "512" and params["epochs"] == "1"
    assert params["generator.features"] == str(json.loads((run / "config.json").read_text())["generator"]["features"])
    artifacts = {a.path for a in client.list_artifacts(ids["run_id"])}
    assert "config.json" in artifacts and "images" in artifacts
    config = client.download_artifacts(ids["run_id"], "config.json", str(logged.tmp))
    assert json.loads(Path(config).read_text())["epochs"] == 2  # rewritten on resume
    pictures = [a.path for a in client.list_artifacts(ids["run_id"], "images") if a.path.endswith(".png")]
    assert sorted(p.split("+step+")[1].split("+")[0] for p in pictures) == [str(E1), str(E2)]
