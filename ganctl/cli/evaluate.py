"""ganctl evaluate"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.cli import ui
from ganctl.core import seeds

EXAMPLES = """
Examples:

  ganctl evaluate dcgan/digits

  ganctl evaluate digits -n 5000 --seed 1

  ganctl evaluate cgan/mnist --checkpoint epoch_0010

  ganctl evaluate dcgan/celeba          (FID, KID, precision/recall: first 'ganctl download inception')

  ganctl evaluate dcgan/digits --features inception --json

  ganctl evaluate pix2pix/facades --mode eval      (L1, PSNR, SSIM and FID on the test pairs)

  ganctl evaluate --pretrained facades_label2photo --dataset facades

  ganctl evaluate cyclegan/horse2zebra     (FID and KID each way; L1/PSNR/SSIM too where the test split is aligned)

  ganctl evaluate cyclegan/maps --direction BtoA --json

  cat "$(ganctl evaluate dcgan/digits)"      (stdout is the path of eval.json; with --json, the numbers)
"""


def evaluate(
    run: str = typer.Argument(None, help="The run: NAME, FAMILY/NAME or a run folder (see 'ganctl list')."),
    n: int = typer.Option(2000, "--num", "-n", help="How many images to generate (classifier space: and real training images for the floor); pix2pix: at most this many test pairs; cyclegan: test images of each domain."),
    seed: int = typer.Option(0, "--seed", "-s", callback=seeds.option, help="Seed for the latent points: the same seed gives the same number."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="Evaluate this generator file, checkpoint folder, or checkpoint of the run (e.g. epoch_0010) instead of the newest."),
    features: str = typer.Option("auto", "--features", help="Feature space: inception (FID, KID, precision/recall), classifier (ganctl's in-domain classifier: FD and KID with their real floor), or auto: classifier for digits, mnist, fashion-mnist and grayscale class folders, inception for the rest."),
    reference_num: int = typer.Option(None, "--reference-num", help="Inception: at most this many real training images (default 10,000)."),
    mode: str = typer.Option("paper", "--mode", help="pix2pix, cyclegan: paper (dropout on, batch statistics, as the paper's test time) or eval (the deterministic network)."),
    direction: str = typer.Option(None, "--direction", help="cyclegan: score one direction, AtoB (G_A) or BtoA (G_B), instead of both."),
    pretrained: str = typer.Option(None, "--pretrained", help="pix2pix, cyclegan: score this pretrained model (see 'ganctl list') instead of a run; needs --dataset."),
    dataset: str = typer.Option(None, "--dataset", help="With --pretrained: the dataset whose test split it is scored on (pix2pix: paired, val where there is no test; cyclegan: unpaired)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (numbers and protocol) as JSON on stdout instead of the path of eval.json."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware"),
) -> None:
    """Score a run: FID, KID and precision/recall on Inception features, FD and KID in ganctl's classifier space, pix2pix L1/PSNR/SSIM/FID on test pairs, or a CycleGAN's FID/KID (and L1/PSNR/SSIM on aligned test sets) each way."""
    from ganctl.core.errors import GanctlError
    from ganctl.store import layout

    if n < 2:
        raise GanctlError("-n must be at least 2 (a covariance needs two samples)")
    if features not in ("auto", "inception", "classifier"):
        raise GanctlError(f"unknown --features {features!r}: use auto, inception or classifier")
    if reference_num is not None and reference_num < 2:
        raise GanctlError("--reference-num must be at least 2")
    if mode not in ("paper", "eval"):
        raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
    if direction is not None and direction not in ("AtoB", "BtoA"):
        raise GanctlError(f"--direction must be AtoB or BtoA (got {direction!r})")
    if direction is not None and pretrained is not None:
        raise GanctlError("--direction picks one of a run's generators; a pretrained model translates one way: leave it out")
    if (run is None) == (pretrained is None):
        raise GanctlError("give a RUN, or --pretrained NAME --dataset D (not both)")
    if pretrained is not None and dataset is None:
        raise GanctlError(f"--pretrained {pretrained} needs --dataset: the paired dataset to score it on (e.g. facades)")
    if dataset is not None and pretrained is None:
        raise GanctlError("--dataset goes with --pretrained: a run is scored on its own dataset")
    info = layout.find_run(run) if run is not None else None  # a mistyped run is answered before torch is imported
    from ganctl.evaluation import evaluate as ev
    from ganctl.runtime import runtime

    dev = runtime.resolve_device(device)
    if info is None:
        result = ev.evaluate_pretrained(pretrained, dataset, mode=mode, seed=seed, n=n, device=dev, progress=ui.info)
        if "directions" in result:
            _print_directions(result)
        else:
            _print_pairs(result)
        import json

        print(json.dumps(result, indent=2, sort_keys=True), flush=True)  # nothing is written: the result is the output
        return
    result, path = ev.evaluate_run(info, n=n, seed=seed, device=dev, checkpoint_path=checkpoint, progress=ui.info,
                                   features=features, reference_n=reference_num, mode=mode, direction=direction)
    if "directions" in result:
        _print_directions(result)
    elif "ssim" in result:
        _print_pairs(result)
    else:
        _print(result)
    if as_json:
        import json

        print(json.dumps(result, indent=2, sort_keys=True), flush=True)
    else:
        ui.result(path)


def _asked(r: dict) -> str:
    """' (of N asked: why)' when fewer images were scored than -n asked for."""
    return f" (of {r['n_requested']:,} asked: {r['n_limit']})" if r.get("n_requested") else ""


def _print_pairs(r: dict) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    who = r.get("run") or r.get("pretrained")
    where = f"{r['checkpoint']}, " if r.get("checkpoint") else ""
    table.add_row("model", who, f"{where}{r['n']:,} {r['split']} pairs of {r['dataset']}, {r['direction']}, --mode {r['mode']}")
    table.add_row("L1", f"{r['l1']:.4f}", "mean absolute difference to the targets, on [0, 1] (lower is better)")
    table.add_row("PSNR", f"{r['psnr']:.2f}", "dB (higher is better)")
    table.add_row("SSIM", f"{r['ssim']:.4f}", "structural similarity (higher is better)")
    if r.get("frechet_distance") is not None:
        table.add_row("FID", f"{r['frechet_distance']:.3f}", "translations against their targets, Inception features")
    console = ui.err()
    console.print(table)
    p = r["protocol"]
    for label, text in (("resize", p["resize"]), ("weights", f"sha256 {p['weights_sha256']}" if "weights_sha256" in p else None),
                        ("library", p.get("library"))):
        if text:
            console.print(f"{label + ':':<11}{text}", soft_wrap=True, highlight=False, markup=False)


def _print_directions(r: dict) -> None:
    """A model with a generator each way (CycleGAN): a row of numbers for each direction."""
    from rich.table import Table

    aligned, fid = r["aligned"], any(d["frechet_distance"] is not None for d in r["directions"].values())
    table = Table(box=None, pad_edge=False)
    table.add_column("direction", style="bold")
    table.add_column("images", justify="right")
    if fid:
        table.add_column("FID", justify="right")
        table.add_column("KID", justify="right")
    if aligned:
        for head in ("L1", "PSNR", "SSIM"):
            table.add_column(head, justify="right")
    for way, d in r["directions"].items():
        row = [way, f"{d['n']:,} -> {d['reference']:,}"]
        if fid:
            row += [f"{d['frechet_distance']:.3f}", f"{d['kid_mean']:.4f} ± {d['kid_std']:.4f}"]
        if aligned:
            row += [f"{d['l1']:.4f}", f"{d['psnr']:.2f}", f"{d['ssim']:.4f}"]
        table.add_row(*row)
    console = ui.err()
    who = r.get("run") or r.get("pretrained")
    where = f"{r['checkpoint']}, " if r.get("checkpoint") else ""
    truth = "aligned: L1, PSNR, SSIM against the true images" if aligned else "not aligned: no ground truth"
    console.print(f"{who}: {where}{r['split']} split of {r['dataset']} ({truth}), --mode {r['mode']}",
                  soft_wrap=True, highlight=False, markup=False)
    console.print(table)
    p = r["protocol"]
    better = ["lower is better: " + ", ".join(["FID, KID"] * fid + ["L1"] * aligned)] + ["higher: PSNR, SSIM"] * aligned
    lines = (("images", "translated -> real test images of the output domain"), ("scores", "; ".join(better)),
             ("resize", p["resize"]), ("weights", f"sha256 {p['weights_sha256']}" if "weights_sha256" in p else None),
             ("library", p.get("library")))
    for label, text in lines:
        if text:
            console.print(f"{label + ':':<11}{text}", soft_wrap=True, highlight=False, markup=False)


def _print(r: dict) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    epoch = f", epoch {r['epoch']}" if r.get("epoch") is not None else ""
    p = r["protocol"]
    table.add_row("run", r["run"], f"{r['checkpoint']}{epoch}, {r['n']:,} samples{_asked(r)}, seed {r['seed']}")
    kid = f"{r['kid_mean']:.4f} ± {r['kid_std']:.4f}"
    if r["feature_space"] == "inception":
        table.add_row("FID", f"{r['frechet_distance']:.3f}", f"against {p['reference']['images']:,} real {p['reference']['split']} images (lower is better)")
        table.add_row("KID", kid, f"mean ± sd over {p['kid']['subsets']} subsets of {p['kid']['subset_size']:,}")
        if r.get("precision") is not None:
            table.add_row("precision", f"{r['precision']:.3f}", "share of samples inside the real images' manifold (fidelity)")
            table.add_row("recall", f"{r['recall']:.3f}", "share of real images inside the samples' manifold (diversity)")
    else:
        table.add_row("Frechet distance", f"{r['frechet_distance']:.3f}", "generated vs real test images (lower is better)")
        table.add_row("reference", f"{r['real_train_vs_test_frechet_distance']:.3f}", f"real training vs test images: the floor, at the same N ({r['n']:,})")
        table.add_row("KID", kid, f"generated vs test; floor {r['real_train_vs_test_kid_mean']:.4f} ± {r['real_train_vs_test_kid_std']:.4f}")
        if r.get("label_accuracy") is not None:
            table.add_row("label accuracy", f"{r['label_accuracy']:.3f}", "samples the classifier sees as the label asked for")
        table.add_row("classifier", f"{r['classifier_test_accuracy']:.3f}", f"test accuracy ({r['classifier']})")
    console = ui.err()
    console.print(table)
    # the protocol, as lines that wrap whole (a hash is never cut): what makes the numbers comparable
    reference = p["reference"]
    for label, text in (("features", p["feature_space"]), ("weights", f"sha256 {p['weights_sha256']}"),
                        ("reference", f"{reference['images']:,} {reference['split']} images of {reference['dataset']}"),
                        ("resize", p["resize"]), ("library", p["library"])):
        console.print(f"{label + ':':<11}{text}", soft_wrap=True, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, rich_help_panel="Train")(evaluate)
