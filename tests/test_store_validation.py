"""A bad file in the store is one run's problem: config.json, generator metadata, metrics.jsonl."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file

from ganctl.config import TrainConfig, check_json
from ganctl.store import layout
from tests.conftest import error_line, invoke, make_image_folder, train_in_own_store

FAST = ["--epochs", "1", "--batch-size", "8", "--image-size", "16", "--seed", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with two dcgan runs, 'a' and 'b', trained once for the module."""
    faces = tmp_path_factory.mktemp("data") / "faces"
    make_image_folder(faces, n=16, size=(16, 16))
    home = train_in_own_store(tmp_path_factory, "dcgan", "--dataset", faces, "--name", "a", *FAST)
    shutil.copytree(home / "runs" / "dcgan" / "a", home / "runs" / "dcgan" / "b")
    cfg = json.loads((home / "runs" / "dcgan" / "b" / "config.json").read_text())
    cfg["run_name"] = "b"
    (home / "runs" / "dcgan" / "b" / "config.json").write_text(json.dumps(cfg))
    return home


@pytest.fixture
def home(trained, _isolated_store):
    shutil.copytree(trained, _isolated_store)
    return _isolated_store


def _generator(home, run="a"):
    return next((home / "runs" / "dcgan" / run / "checkpoints").glob("epoch_*")) / "generator.safetensors"


def _rewrite_generator(path, tensors=None, meta=None):
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    state = load_file(str(path)) if tensors is None else tensors
    if meta is not None:
        header = {**header, "ganctl": meta if isinstance(meta, str) else json.dumps(meta)}
    save_file(state, str(path), metadata=header)


def _config(home):
    return json.loads((home / "runs" / "dcgan" / "a" / "config.json").read_text())


DAMAGED = {
    "a list": "[1, 2]",
    "created a number": lambda cfg: {**cfg, "created": 12345},
    "epochs a string": lambda cfg: {**cfg, "epochs": "three"},
    "negative batch size": lambda cfg: {**cfg, "batch_size": -5},
    "empty": "",
    "invalid JSON": "{bad",
    "seed beyond 64 bits": lambda cfg: {**cfg, "seed": 2**64},
}
REASONS = {
    "a list": "a list", "created a number": "created is 12345", "epochs a string": "epochs is 'three'",
    "negative batch size": "batch_size is -5", "empty": "empty", "invalid JSON": "not valid JSON",
    "seed beyond 64 bits": "seed is 18446744073709551616, outside",
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_config_is_that_runs_problem_only(home, tmp_path, case):
    bad = DAMAGED[case]
    path = home / "runs" / "dcgan" / "b" / "config.json"
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad(_config(home))))

    r = invoke("list", "--runs")
    assert r.exit_code == 0, r.output
    assert sorted(r.stdout.split()) == ["dcgan/a", "dcgan/b"]
    r = invoke("list")
    assert r.exit_code == 0, r.output
    rows = {ln.split()[0]: ln for ln in r.stderr.splitlines() if ln.startswith("dcgan/")}
    assert "damaged" in rows["dcgan/b"] and REASONS[case] in rows["dcgan/b"]
    assert "damaged" not in rows["dcgan/a"] and "1/1" in rows["dcgan/a"]

    out = tmp_path / "a.png"
    r = invoke("sample", "dcgan", "--run", "a", "-n", 4, "-o", out)
    assert r.exit_code == 0 and out.is_file(), r.output
    for args in (("sample", "dcgan", "--run", "b", "-n", 4, "-o", tmp_path / "b.png"),
                 ("train", "dcgan", "--resume", "--name", "b")):
        line = error_line(invoke(*args))
        assert str(path) in line and REASONS[case] in line and "ganctl rm" not in line
        assert line.endswith("correct that in the file and the run works again (its checkpoints are not affected)")
        assert "internal error" not in line

    r = invoke("rm", "b", "--yes")
    assert r.exit_code == 0, r.output
    assert not (home / "runs" / "dcgan" / "b").exists() and (home / "runs" / "dcgan" / "a").is_dir()


def test_config_checks_follow_the_dataclass(home):
    cfg = _config(home)
    check_json(cfg)  # what ganctl writes passes
    for key, value, reason in (("betas", [0.5], "betas is [0.5], not a list of 2"), ("lr", 0, "lr is 0"),
                               ("classes", ["a", 3], "not a list of strings or null"), ("family", "gam", "not one of"),
                               ("generator", [], "generator is [], not an object"), ("eval_every", True, "not an integer")):
        with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
            check_json({**cfg, key: value})
    with pytest.raises(ValueError, match="no 'epochs' field"):
        check_json({k: v for k, v in cfg.items() if k != "epochs"})
    (home / "c.json").write_text(json.dumps({**cfg, "epochs": 2.5}))
    with pytest.raises(layout.StoreError, match=r"c.json is damaged: epochs is 2.5, not an integer"):
        TrainConfig.load(home / "c.json")


def test_generator_arguments_of_the_wrong_type_in_config_are_damage(home):
    cfg = _config(home)
    cfg["generator"] = {**cfg["generator"], "features": "8"}
    (home / "runs" / "dcgan" / "a" / "config.json").write_text(json.dumps(cfg))
    line = error_line(invoke("train", "dcgan", "--resume", "--name", "a"))
    assert "generator.features is '8', not an integer" in line and "ganctl rm" not in line
    assert "its checkpoints are not affected" in line


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_a_generator_in_another_precision_is_cast(home, tmp_path, dtype):
    path = _generator(home)
    ref = tmp_path / "ref.png"
    assert invoke("sample", "dcgan", "--checkpoint", path, "-n", 4, "--seed", 3, "-o", ref).exit_code == 0
    _rewrite_generator(path, {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(str(path)).items()})
    out = tmp_path / "cast.png"
    r = invoke("sample", "dcgan", "--checkpoint", path, "-n", 4, "--seed", 3, "-o", out)
    assert r.exit_code == 0, r.output
    assert out.is_file()


def test_integer_weights_are_refused(home, tmp_path):
    path = _generator(home)
    _rewrite_generator(path, {k: (v * 100).to(torch.int32) for k, v in load_file(str(path)).items()})
    line = error_line(invoke("sample", "dcgan", "--checkpoint", path, "-o", tmp_path / "x.png"))
    assert "int32 values, not floating-point weights" in line


def _meta(path):
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["ganctl"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: {**m, "arch": "stylegan"}, "arch is 'stylegan', not one of"),
        (lambda m: {**m, "generator": {**m["generator"], "z_dim": "100"}}, "generator.z_dim is '100', not an integer"),
        (lambda m: {**m, "generator": {**m["generator"], "features": 0}}, "generator.features is 0, below its minimum 1"),
        (lambda m: {**m, "generator": {**m["generator"], "width": 3}}, "generator.width is not an argument"),
        (lambda m: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (lambda m: "[1, 2]", "it is list, not an object"),
    ],
    ids=["unknown-arch", "string-z_dim", "zero-features", "unknown-argument", "deeply-nested", "a-list"],
)
@pytest.mark.parametrize("where", ["header", "config.json"])
def test_bad_generator_metadata_is_one_clear_line(home, tmp_path, change, reason, where):
    """The spec is damaged in the safetensors header of a checkpoint in the old layout (no
    config.json beside it), or in the config.json beside the generator (which is read first)."""
    path = _generator(home)
    beside = path.with_name("config.json")
    bad = change(_meta(path))
    if where == "header":
        beside.unlink()
        _rewrite_generator(path, meta=bad)
    else:
        beside.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    line = error_line(invoke("sample", "dcgan", "--checkpoint", path, "-o", tmp_path / "x.png"))
    assert (str(path) in line or str(beside) in line) and reason in line and "internal error" not in line


def test_listing_survives_a_pretrained_file_with_deeply_nested_metadata(home):
    folder = home / "pretrained" / "deep"
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(1)}, str(folder / "generator.safetensors"), metadata={"ganctl": "[" * 100_000})
    r = invoke("list")
    assert r.exit_code == 0, r.output
    assert "deep" in r.stderr and "(unreadable metadata)" in r.stderr


def test_a_torn_last_metrics_line_does_not_break_list(home):
    run = home / "runs" / "dcgan" / "a"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "checkpoints" / "latest").write_text("step_00000001\n")  # as after an interrupt
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 99, "epo')
    r = invoke("list")
    assert r.exit_code == 0, r.output
    row = next(ln for ln in r.stderr.splitlines() if ln.startswith("dcgan/a"))
    assert f"{rows[-1]['epoch'] - 1}/1" in row


def test_bytes_that_are_not_utf8_in_run_files_cost_their_line_only(home, tmp_path):
    from ganctl.store import retention
    from ganctl.train.callbacks.metrics import read_rows

    run = home / "runs" / "dcgan" / "a"
    lines = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    # one line of a middle row overwritten with bytes that are not UTF-8, the rest intact
    (run / "metrics.jsonl").write_bytes(lines[0] + b'{"step": 2, "epoch": \xff\xfe1}\n' + b"".join(lines[1:]))
    r = invoke("report", "dcgan/a", "-o", tmp_path / "page")
    assert r.exit_code == 0, r.output
    assert "dcgan/a: 1 damaged line(s) of metrics.jsonl skipped" in r.stderr
    assert (tmp_path / "page" / "index.html").is_file()
    assert len(read_rows(run / "metrics.jsonl", 10**9)) == len(lines)  # what a --resume keeps
    # a pointer to the newest checkpoint with such bytes: ignored, the newest folder is found
    (run / "checkpoints" / "latest").write_bytes(b"epoch_\xff\n")
    assert retention.candidates(run)[0].name.startswith("epoch_")
    for args in (("report", "dcgan/a", "-o", tmp_path / "again"), ("list",), ("list", "--runs")):
        r = invoke(*args)
        assert r.exit_code == 0 and "internal error" not in r.output, (args, r.output)


def test_a_damaged_checkpoint_names_the_ones_that_load_not_ganctl_rm(home, tmp_path):
    ckpts = home / "runs" / "dcgan" / "a" / "checkpoints"
    good = next(ckpts.glob("epoch_*"))
    bad = ckpts / "epoch_0009"
    shutil.copytree(good, bad)
    gen = bad / "generator.safetensors"
    gen.write_bytes(gen.read_bytes()[:2000])  # truncated
    for args in (("sample", "dcgan", "--run", "a", "--checkpoint", "epoch_0009", "-n", 4, "-o", tmp_path / "x.png"),
                 ("export", "--checkpoint", bad, "-f", "onnx", "-o", tmp_path / "x.onnx")):
        line = error_line(invoke(*args))
        assert f"{gen} is not a readable safetensors file" in line and "ganctl rm" not in line, line
        assert f"the run's checkpoints that load: {good.name} (give one to --checkpoint" in line, line
    # none loads: what to do, without deleting the run's config, metrics and pictures
    g = good / "generator.safetensors"
    g.write_bytes(g.read_bytes()[:2000])
    line = error_line(invoke("sample", "dcgan", "--run", "a", "-n", 4, "-o", tmp_path / "y.png"), code=1)
    assert "has no readable checkpoint" in line and "ganctl rm" not in line and "restore it from a copy" in line


def test_list_stays_readable_when_a_config_holds_huge_numbers(home):
    path = home / "runs" / "dcgan" / "a" / "config.json"
    path.write_text(json.dumps({**_config(home), "epochs": 10**150, "keep_epochs": [10**150]}))
    r = invoke("list")
    assert r.exit_code == 0, r.output
    row = next(ln for ln in r.stderr.splitlines() if ln.startswith("dcgan/a "))
    assert "1/1.00e+150" in row, row
    assert max(len(ln) for ln in r.stderr.splitlines()) <= 200  # COLUMNS, as the tests set it
    assert "dcgan/b " in r.stderr  # the other run's row, whole
