"""Multi-process training (ganctl.runtime.distributed, ganctl.runtime.launch): CPU processes on gloo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ganctl.config import make_config
from ganctl.core.errors import GanctlError
from ganctl.runtime import distributed, launch, runtime
from ganctl.train import objectives, trainer
from tests.conftest import error_line, invoke

CPU = runtime.Runtime(torch.device("cpu"), "fp32", accel=False)
ROOT = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 8


# ---------------------------------------------------------------- torch-free parts


def test_launcher_options_are_left_out_of_the_workers_command():
    args = ["dcgan", "--dataset", "digits", "--nproc-per-node", "2", "--nnodes=2", "--node-rank", "1",
            "--rdzv-endpoint", "h:1", "--epochs", "3", "--dist-timeout", "30"]
    assert launch.worker_args(args) == ["dcgan", "--dataset", "digits", "--epochs", "3", "--dist-timeout", "30"]


def test_torchrun_command_line_for_one_and_two_machines():
    one = launch.torchrun_args(2, 1, None, None, 60, ["dcgan"])
    assert "--standalone" in one and one[-4:] == ["-m", "ganctl", "train", "dcgan"]
    assert one[one.index("--max-restarts") + 1] == "0"
    two = launch.torchrun_args(4, 2, 1, "10.0.0.1:29400", 30, ["dcgan"])
    assert two[two.index("--rdzv-backend") + 1] == "static" and two[two.index("--node-rank") + 1] == "1"
    assert "join_timeout=30,timeout=30" in two
    arriving = launch.torchrun_args(4, 2, None, "10.0.0.1:29400", 30, ["dcgan"])
    assert arriving[arriving.index("--rdzv-backend") + 1] == "c10d"


def test_world_from_torchrun_environment():
    assert distributed.from_env({}) == distributed.World()
    w = distributed.from_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"})
    assert (w.rank, w.local_rank, w.size, w.local_size, w.main, w.active) == (3, 1, 4, 2, False, True)
    with pytest.raises(GanctlError, match="RANK=4"):
        distributed.from_env({"RANK": "4", "WORLD_SIZE": "4"})


def test_the_global_batch_must_divide_by_the_processes():
    distributed.check_batch(64, 4)
    with pytest.raises(GanctlError, match="--batch-size 10 is the global batch and must divide by the 4 processes: use 8 or 12"):
        distributed.check_batch(10, 4)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "7", "--nproc-per-node", "2"], "must divide by the 2 processes: use 6 or 8"),
    (["--nproc-per-node", "two"], "--nproc-per-node takes a number of processes or auto"),
    (["--nproc-per-node", "2", "--nnodes", "2"], "--rdzv-endpoint HOST:PORT"),
    (["--nnodes", "2"], "give it too"),
])
def test_launcher_mistakes_are_one_line_before_any_process_starts(args, message):
    t0 = time.perf_counter()
    r = invoke("train", "dcgan", "--dataset", "digits", *args)
    assert message in error_line(r)
    assert time.perf_counter() - t0 < 5


# ---------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(family: str):
    cfg = make_config(family.split("+")[0], "digits", "t", channels=1, classes=None, preset_key="digits", epochs=1,
                      batch_size=GLOBAL_BATCH, image_size=16, seed=3)
    if family == "gan":  # an MLP without batch norm or dropout
        return replace(cfg, generator={**cfg.generator, "hidden": [16], "batch_norm": False, "dropout": 0.0},
                       discriminator={**cfg.discriminator, "hidden": [16], "dropout": 0.0})
    if family == "gan+dropout":  # the MLPs with dropout 0.3 in both networks (cgan's digits preset has it in D)
        return replace(cfg, generator={**cfg.generator, "hidden": [16], "batch_norm": False, "dropout": 0.3},
                       discriminator={**cfg.discriminator, "hidden": [16], "dropout": 0.3})
    return replace(cfg, generator={**cfg.generator, "features": 4}, discriminator={**cfg.discriminator, "features": 4})


# no batch norm; dropout drawn for the global batch; synchronised batch norm; gradient penalty (double backward)
CASES = ("gan", "gan+dropout", "dcgan", "wgan-gp")


def _steps(family: str) -> dict:
    """Two full steps of ``family`` on fixed global batches; the networks' weights after them."""
    cfg = _config(family)
    nets = trainer.build_networks(cfg, CPU)
    G, D = nets["generator"], nets["discriminator"]
    if distributed.world().active:
        for net in (G, D):
            distributed.global_dropout(net)
            distributed.sync_batch_norm(net)
    obj = objectives.build(nets, cfg, CPU)
    torch.manual_seed(cfg.seed)
    real = torch.rand(2, GLOBAL_BATCH, 1, 16, 16, generator=torch.Generator().manual_seed(7)) * 2 - 1
    for b in range(2):
        batch = {"real": distributed.local_rows(real[b]), "labels": None}
        obj.d_step(batch, for_g=True)
        obj.g_step(batch)
    return {"G": {k: v.clone() for k, v in G.state_dict().items()}, "D": {k: v.clone() for k, v in D.state_dict().items()}}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.start(CPU, 30)
    try:
        torch.save({f: _steps(f) for f in CASES}, Path(out) / f"rank{rank}.pt")
    finally:
        distributed.stop()


@pytest.fixture(scope="module")
def two_process_steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    torch.multiprocessing.start_processes(_worker, args=(_free_port(), str(out)), nprocs=2, start_method="spawn")
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def _assert_adam_close(two: torch.Tensor, one: torch.Tensor, lr: float, what: str) -> None:
    """Weights after Adam steps taken from the same gradients up to rounding. Adam divides each
    gradient by its own running RMS, so where a weight's gradient sums to about 0 over the global
    batch, rounding (the all-reduce adds the two halves; one process sums the batch in its own
    order, with its own kernels) can move that weight by a good part of a step (lr) in either
    direction: a few weights in ten thousand (1 of 25,600 of the DCGAN generator's first layer,
    1.1e-5 apart, on one CPU). Everything else must agree to 1e-4."""
    close = torch.isclose(two, one, rtol=1e-4, atol=1e-5)
    off = (~close).sum().item()
    assert off <= max(1, one.numel() // 1000), f"{what}: {off} of {one.numel()} weights differ"
    assert (two - one).abs().max().item() <= lr, f"{what}: a weight differs by more than one step"


@pytest.mark.parametrize("family", CASES)
def test_two_processes_step_as_one_process_on_the_global_batch(two_process_steps, family):
    one = _steps(family)
    rank0, rank1 = (s[family] for s in two_process_steps)
    for net in ("G", "D"):
        for k, v in one[net].items():
            assert torch.equal(rank0[net][k], rank1[net][k]), f"{net}.{k} differs between the ranks"
            if v.dtype.is_floating_point:
                _assert_adam_close(rank0[net][k], v, lr=_config(family).lr, what=f"{family} {net}.{k}")
            else:
                assert torch.equal(rank0[net][k], v)
    # and the step did something: the weights moved from their initialisation
    G0 = trainer.build_networks(_config(family), CPU)["generator"]
    assert any(not torch.allclose(G0.state_dict()[k], one["G"][k]) for k in one["G"] if one["G"][k].is_floating_point())


def _ganctl(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "ganctl", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


TINY = ["--epochs", "2", "--batch-size", "500", "--image-size", "16", "--device", "cpu"]


def _one_run(home: Path) -> Path:
    runs = list((home / "runs" / "dcgan").iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    assert json.loads((run / "config.json").read_text())["batch_size"] == 500
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 7))  # 3 global batches of 500 a epoch, one row each
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith(".")) == ["epoch_0002", "latest"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    return run


def test_nproc_per_node_trains_one_run_that_sample_reads(tmp_path, _isolated_store):
    r = _ganctl("train", "dcgan", "--dataset", "digits", *TINY, "--nproc-per-node", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    run = _one_run(_isolated_store)
    assert r.stdout.strip().splitlines() == [str(run.resolve())]
    assert "Traceback" not in r.stderr and "WARNING" not in r.stderr
    s = invoke("sample", "dcgan", "-n", 4, "-o", tmp_path / "s.png")
    assert s.exit_code == 0, s.output
    assert (tmp_path / "s.png").is_file()
    sessions = json.loads((run / "runtime.json").read_text())["sessions"]
    assert [s["processes"] for s in sessions] == [2]
    # one process resumes it, and says it is not bit-exact
    r = invoke("train", "dcgan", "--resume", "--epochs", 3)
    assert r.exit_code == 0, r.output
    assert "trained with 2 processes and resumes with 1" in r.stderr


@pytest.mark.slow
def test_torchrun_trains_the_same_run(_isolated_store):
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                        "ganctl", "train", "dcgan", "--dataset", "digits", *TINY, "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    run = _one_run(_isolated_store)
    assert r.stdout.strip().splitlines() == [str(run.resolve())]  # rank 0 alone prints


def test_a_worker_that_raises_ends_the_job_with_one_line(tmp_path, _isolated_store):
    # rank 1 alone fails at its first discriminator step (a sitecustomize only its process runs)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '1':\n"
        "    from ganctl.train import objectives\n"
        "    from ganctl.core.errors import GanctlError\n"
        "    def boom(self, batch, for_g=True):\n"
        "        raise GanctlError('injected failure')\n"
        "    objectives.BCEObjective.d_step = boom\n")
    t0 = time.perf_counter()
    r = _ganctl("train", "dcgan", "--dataset", "digits", *TINY, "--nproc-per-node", "2", "--quiet", "--dist-timeout", 20,
                env={"PYTHONPATH": os.pathsep.join([str(hook), str(ROOT)])})
    took = time.perf_counter() - t0
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[-1] == "error: rank 1 of the job failed: injected failure", r.stderr
    assert sum(ln.startswith("error:") for ln in lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert took < 60


@pytest.mark.slow
def test_sigkill_of_rank_0_then_resume_is_bit_exact_with_two_processes(_isolated_store):
    from safetensors.torch import load_file

    args = ["--dataset", "digits", "--batch-size", "500", "--image-size", "16", "--device", "cpu", "--epochs", "3",
            "--nproc-per-node", "2", "--quiet"]
    assert _ganctl("train", "dcgan", *args, "--name", "whole").returncode == 0
    # rank 0 is SIGKILLed as it starts writing epoch 2's checkpoint, right after it made the temporary
    # folder (benchmarks/faultinject/sitecustomize.py, which every process of the job runs)
    inject = {"FAULTINJECT": "save:epoch_0002:tmp-created",
              "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks" / "faultinject"), str(ROOT)])}
    r = _ganctl("train", "dcgan", *args, "--name", "cut", env=inject)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == (
        "error: rank 0 of the job failed (killed by SIGKILL); the other ranks were stopped"), r.stderr
    r = _ganctl("train", "dcgan", "--resume", "--name", "cut", "--nproc-per-node", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "resuming from checkpoints/epoch_0001" in r.stderr
    runs = _isolated_store / "runs" / "dcgan"
    for net in ("generator", "discriminator"):
        a = load_file(runs / "whole" / "checkpoints" / "epoch_0003" / f"{net}.safetensors")
        b = load_file(runs / "cut" / "checkpoints" / "epoch_0003" / f"{net}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), net


@pytest.mark.slow
def test_two_machines_simulated_on_one_train_one_run(_isolated_store):
    endpoint = f"127.0.0.1:{_free_port()}"
    cmd = [sys.executable, "-m", "ganctl", "train", "dcgan", "--dataset", "digits", *TINY, "--quiet",
           "--nproc-per-node", "1", "--nnodes", "2", "--rdzv-endpoint", endpoint]
    nodes = [subprocess.Popen([*cmd, "--node-rank", str(r)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=240) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs
    run = _one_run(_isolated_store)
    assert outs[0][0].strip() == str(run.resolve())  # node 0 holds rank 0 and prints the run
    assert "rank 0 of the job ran on another machine" in outs[1][1]
    assert json.loads((run / "runtime.json").read_text())["sessions"][0]["processes"] == 2


@pytest.mark.slow
def test_wgan_gp_trains_with_two_processes(_isolated_store):
    r = _ganctl("train", "wgan-gp", "--dataset", "digits", "--epochs", "1", "--batch-size", "100", "--image-size", "16",
                "--device", "cpu", "--nproc-per-node", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    run = next((_isolated_store / "runs" / "wgan-gp").iterdir())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 15 and all("gp" in row for row in rows) and sum("g_loss" in row for row in rows) == 3
    assert (run / "checkpoints" / "epoch_0001" / "generator.safetensors").is_file()


def test_worker_options_that_look_like_torchruns_reach_the_workers():
    # `--log` is a prefix of torchrun's --log-dir and --log-line-prefix-template
    from ganctl.runtime import launch

    argv = launch.torchrun_args(2, 1, None, None, 60, ["dcgan", "--log", "tensorboard", "--log", "wandb"])
    args = launch.parse_torchrun(argv)
    assert args.training_script == "ganctl" and args.module
    assert args.training_script_args == ["train", "dcgan", "--log", "tensorboard", "--log", "wandb"]


@pytest.mark.slow
def test_ctrl_c_of_the_whole_job_then_resume_is_bit_exact_with_two_processes(_isolated_store):
    # Ctrl-C in a terminal reaches every process of the job (launcher and ranks); the ranks agree on
    # the batch to stop after, rank 0 saves it, the job exits 130, and --resume ends where an
    # uninterrupted run ends, bit for bit
    import signal

    from safetensors.torch import load_file

    args = ["--dataset", "digits", "--batch-size", "100", "--image-size", "16", "--device", "cpu", "--epochs", "12",
            "--nproc-per-node", "2", "--quiet"]
    assert _ganctl("train", "dcgan", *args, "--name", "whole").returncode == 0
    job = subprocess.Popen([sys.executable, "-m", "ganctl", "train", "dcgan", *args, "--name", "cut"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    first = _isolated_store / "runs" / "dcgan" / "cut" / "checkpoints" / "epoch_0001"
    deadline = time.monotonic() + 120
    while not first.is_dir() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGINT)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and sum(ln.startswith("error:") for ln in lines) <= 1, err
    assert "--resume" in err, err
    saved = sorted(p.name for p in first.parent.iterdir())
    assert saved and "epoch_0012" not in saved, (saved, err)  # stopped before the end
    r = _ganctl("train", "dcgan", "--resume", "--name", "cut", "--nproc-per-node", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    runs = _isolated_store / "runs" / "dcgan"
    for net in ("generator", "discriminator"):
        a = load_file(runs / "whole" / "checkpoints" / "epoch_0012" / f"{net}.safetensors")
        b = load_file(runs / "cut" / "checkpoints" / "epoch_0012" / f"{net}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), net


def test_the_launcher_names_the_rank_that_failed_not_the_ones_that_lost_it(tmp_path):
    from types import SimpleNamespace

    class Failed:
        def __init__(self, **exits):
            self.failures = {int(r[1:]): SimpleNamespace(exitcode=c, timestamp=t) for r, (c, t) in exits.items()}

        def get_first_failure(self):
            return min(self.failures.items(), key=lambda rf: rf[1].timestamp)

    # rank 0 was SIGKILLed (it wrote nothing); rank 1 then lost its connection to it, said so, and exited 1
    (tmp_path / "lost-rank-1.txt").write_text("lost the connection to another rank of the job (RuntimeError: reset)")
    both = Failed(r0=(-9, 2.0), r1=(1, 1.0))
    assert launch._failure_line(both, tmp_path) == "rank 0 of the job failed (killed by SIGKILL); the other ranks were stopped"
    # a lost connection alone (a rank that hung, not died) is what there is to say
    assert launch._failure_line(Failed(r1=(1, 1.0)), tmp_path).startswith("rank 1 of the job failed: lost the connection")
    # a rank's own error comes first of all
    (tmp_path / "error-rank-3.txt").write_text("injected failure")
    assert launch._failure_line(both, tmp_path) == "rank 3 of the job failed: injected failure"
    assert launch.lost_peer(RuntimeError("[../gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer"))
    assert not launch.lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


@pytest.mark.slow
def test_cyclegan_trains_and_resumes_with_two_processes(tmp_path, _isolated_store):
    # its four networks and image pools on gloo: a run of 2 epochs, and one cut after 1 and resumed,
    # each with 2 processes of 1 image (batch norm would be per rank; the recipe's instance norm
    # needs nothing shared), end with the same weights
    from safetensors.torch import load_file

    from tests.families.test_cyclegan import TINY as CYC
    from tests.families.test_cyclegan import _domain

    _domain(tmp_path / "A", 0, 4, (150, 20, 20))
    _domain(tmp_path / "B", 1, 4, (20, 20, 150))
    args = ["--dataset", f"{tmp_path / 'A'}:{tmp_path / 'B'}", *map(str, CYC), "--batch-size", "2", "--epochs-decay",
            "0", "--device", "cpu", "--nproc-per-node", "2", "--quiet"]
    r = _ganctl("train", "cyclegan", *args, "--epochs", "2", "--name", "whole")
    assert r.returncode == 0, r.stderr
    assert _ganctl("train", "cyclegan", *args, "--epochs", "1", "--name", "cut").returncode == 0
    r = _ganctl("train", "cyclegan", "--resume", "--name", "cut", "--epochs", "2", "--precision", "fp32",
                "--nproc-per-node", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "resuming from checkpoints/epoch_0001" in r.stderr
    runs = _isolated_store / "runs" / "cyclegan"
    assert [s["processes"] for s in json.loads((runs / "cut" / "runtime.json").read_text())["sessions"]] == [2, 2]
    rows = [json.loads(line) for line in (runs / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "g_a" in row] == [1, 2, 3, 4]  # 2 global batches of 2 an epoch
    for f in ("G_A/generator.safetensors", "G_B/generator.safetensors", "D_A/discriminator.safetensors",
              "D_B/discriminator.safetensors"):
        a = load_file(runs / "whole" / "checkpoints" / "epoch_0002" / f)
        b = load_file(runs / "cut" / "checkpoints" / "epoch_0002" / f)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
