"""ganctl train"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import typer

from ganctl import augment_spec
from ganctl.cli import completion, ui
from ganctl.core import seeds
from ganctl.families import registry
from ganctl.runtime import distributed, launch
from ganctl.store import retention


def _dataset_help() -> str:
    """--dataset's help from the catalog (plain data, no torch): the names of each kind."""
    from ganctl.data import catalog

    single = ", ".join(n for n, e in catalog.CATALOG.items() if not e.paired and not e.unpaired)
    pairs = ", ".join(catalog.paired_names())
    takers = " and ".join(f.name for f in registry.FAMILIES.values() if f.paired)
    return (f"A dataset name ({single}; pairs for {takers}: {pairs}) or a folder of images (searched recursively; "
            "sub-folders give class labels) or of pairs. 'ganctl download' lists them.")


_DATASET_HELP = _dataset_help()

EXAMPLES = """
Examples:

  ganctl train dcgan --dataset digits

  ganctl train gan --dataset mnist --seed 1 --name mnist-seed1

  ganctl train dcgan --dataset ./my_images --image-size 64

  ganctl train dcgan --dataset ./fifty_faces --augment color,translation,cutout

  ganctl train pix2pix --dataset ./my_pairs --augment ada

  ganctl train wgan-gp --dataset ./faces --epochs 1

  ganctl train wgan --dataset digits --n-critic 3 --clip 0.02

  ganctl train cgan --dataset digits --eval-every 50

  ganctl train cgan --arch conv --dataset fashion-mnist

  ganctl train pix2pix --dataset synthetic-facades --epochs 2

  ganctl train pix2pix --dataset maps --epochs 40

  ganctl train pix2pix --dataset ./my_pairs --direction BtoA --epochs 100 --epochs-decay 50

  ganctl train cyclegan --dataset synthetic-facades-unpaired

  ganctl train cyclegan --dataset horse2zebra

  ganctl train cyclegan --dataset ./photos:./paintings --image-size 128

  ganctl train dcgan --resume --epochs 30

  ganctl train dcgan --dataset mnist --epochs 40 --save-every 5 --keep-epochs 20

  ganctl train dcgan --dataset celeba --nproc-per-node auto --batch-size 256

  torchrun --nproc_per_node 4 -m ganctl train dcgan --dataset celeba --batch-size 256

  ganctl train dcgan --dataset digits --epochs 2 --log tensorboard --log wandb
"""


def _families() -> str:
    """'gan, dcgan, ... or pix2pix', from the registry."""
    names = registry.names()
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _archs() -> str:
    """The --arch values of each family that has more than one: 'cgan: mlp (the default) or conv'."""
    return "; ".join(f"{f.name}: {f.arch}, the default, or {' or '.join(f.variants)}"
                     for f in registry.FAMILIES.values() if f.variants)


def _only(flag: str, text: str) -> str:
    """The help of a family option, naming every family (and --arch) that takes it, from the registry."""
    return f"{text} For {registry.takers(flag)}."


def train(
    ctx: typer.Context,
    model: str = typer.Argument(..., help=f"Model family: {_families()} (see 'ganctl list').", autocompletion=completion.models),
    dataset: str = typer.Option(None, "--dataset", "-d", help=_DATASET_HELP, rich_help_panel="Data", autocompletion=completion.datasets),
    image_size: int = typer.Option(None, "--image-size", help="Train at this size (default: the family's for this dataset).", rich_help_panel="Data"),
    mirror: str = typer.Option(None, "--mirror", envvar="GANCTL_MIRROR", help="Base URL to download the dataset from instead of the published ones.", rich_help_panel="Data"),
    arch: str = typer.Option(None, "--arch", help=f"Architecture variant ({_archs()}).", rich_help_panel="Training"),
    epochs: int = typer.Option(None, "--epochs", "-e", help="Total epochs (default: the family's for this dataset). With --resume, the new total.", rich_help_panel="Training"),
    batch_size: int = typer.Option(None, "--batch-size", "-b", help="Images per batch (with several processes: in all, split evenly over them).", rich_help_panel="Training"),
    lr: float = typer.Option(None, "--lr", help="Learning rate of both networks.", rich_help_panel="Training"),
    seed: int = typer.Option(None, "--seed", callback=seeds.option, help="Seed for weights, noise and batch order (default: 0).", rich_help_panel="Training"),
    augment: str = typer.Option(None, "--augment", metavar="POLICY", help="Augment everything the discriminator sees, real and generated, differentiably: DiffAugment's color, translation, cutout (any of them, comma-separated; Zhao et al., 2020), ada (adaptive augmentation, its strength tuned from the discriminator's overfitting; Karras et al., 2020) or none (default: none; for folders of under 1,000 images ganctl suggests ada). For every family; pix2pix and cyclegan transform input and output alike; L1, cycle and identity losses are not augmented.", rich_help_panel="Training"),
    ada_target: float = typer.Option(None, "--ada-target", help="With --augment ada: the share of real images the discriminator may be sure of before augmentation strengthens, 0 to 1 (default: 0.6, the paper's).", rich_help_panel="Training"),
    eval_every: int = typer.Option(None, "--eval-every", help="Run 'ganctl evaluate' every N epochs and record the numbers (labelled datasets).", rich_help_panel="Training"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware"),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32, bf16 or fp16 (auto: bf16 where the hardware runs it fast: CUDA GPUs from Ampere on, CPUs with AMX or AVX-512 BF16; fp16: GPUs, with loss scaling).", rich_help_panel="Hardware"),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the networks (slower start, faster steps on GPUs).", rich_help_panel="Hardware"),
    no_accel: bool = typer.Option(False, "--no-accel", help="Turn off ganctl's CPU fast paths (small-map convolutions as matrix products, copy-free Adam, the malloc setting): PyTorch's own kernels only.", rich_help_panel="Hardware"),
    save_every: int = typer.Option(None, "--save-every", help="Save a checkpoint every N epochs; the last epoch and Ctrl-C always save (default: 1). --resume may change it.", rich_help_panel="Checkpoints"),
    keep: int = typer.Option(None, "--keep", help="Checkpoints kept, the newest always among them; older ones are deleted after each save (default: 1, all an exact --resume needs). --resume may change it.", rich_help_panel="Checkpoints"),
    keep_epochs: str = typer.Option(None, "--keep-epochs", metavar="EPOCHS", callback=retention.parse_epochs, help="Epochs whose checkpoints are saved and never deleted, e.g. 10,20. --resume adds to them.", rich_help_panel="Checkpoints"),
    nproc_per_node: str = typer.Option(None, "--nproc-per-node", metavar="N|auto", help="Train with N processes on this machine (auto: one per GPU; on a CPU, each gets the cores divided by N), started through torchrun's machinery. See docs/distributed.md.", rich_help_panel="Several processes"),
    nnodes: int = typer.Option(None, "--nnodes", help="Machines in the job (with --nproc-per-node and --rdzv-endpoint; each machine runs the same command).", rich_help_panel="Several processes"),
    node_rank: int = typer.Option(None, "--node-rank", help="This machine's number, 0 to --nnodes - 1 (leave it out to number machines as they arrive).", rich_help_panel="Several processes"),
    rdzv_endpoint: str = typer.Option(None, "--rdzv-endpoint", metavar="HOST:PORT", help="Where the machines of a job meet (the first machine's address and a free port).", rich_help_panel="Several processes"),
    dist_timeout: float = typer.Option(distributed.DEFAULT_TIMEOUT_S, "--dist-timeout", metavar="SECONDS", help="With several processes: a rendezvous or a step that waits longer than this for another process ends the job.", rich_help_panel="Several processes"),
    name: str = typer.Option(None, "--name", "-n", help="Run name (default: the dataset's name, numbered).", rich_help_panel="Run"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run named by --name (default: the newest run of MODEL).", rich_help_panel="Run"),
    log: list[str] = typer.Option(None, "--log", metavar="TRACKER", help="Also send the run to an experiment tracker: tensorboard (event files in RUN/tensorboard), wandb (offline unless logged in or WANDB_MODE says otherwise) or mlflow (MLFLOW_TRACKING_URI). Repeatable. Each needs its extra: pip install 'ganctl[tensorboard]'. Give it again with --resume to go on logging the same tracker run.", rich_help_panel="Run", autocompletion=completion.trackers),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output; print only the run folder.", rich_help_panel="Run"),
    **family_options: object,
) -> None:
    """Train a model; checkpoints, samples and metrics go to a run folder in the store."""
    from ganctl.families import registry

    model = registry.get(model).name  # a typo is answered before torch is imported; DCGAN is dcgan
    launch.check_options(nproc_per_node, nnodes, node_rank, rdzv_endpoint, batch_size)
    if augment is not None or ada_target is not None:  # a launcher's workers would each say it later
        augment_spec.parse(augment, ada_target)
    if nproc_per_node is not None:  # the launcher: its workers run this command without these options
        done = launch.launch(ctx.meta.get("ganctl_args", []), nproc_per_node, nnodes, node_rank, rdzv_endpoint, dist_timeout,
                             device)
        if not done:
            ui.info("done: rank 0 of the job ran on another machine, which holds the run")
            return
        _finish(model, Path(done["run_dir"]), done["epochs_done"], done["step"], done["interrupted"],
                done["checkpoint"], resume, quiet)
        return
    from ganctl.train.setup import TrainRequest, run_training

    progress = ui.DownloadProgress()
    try:
        request = TrainRequest(
            family=model, dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            image_size=image_size, device=device, precision=precision, compile=compile, accel=not no_accel,
            name=name, resume=resume, mirror=mirror, arch=arch, eval_every=eval_every, save_every=save_every,
            keep=keep, keep_epochs=keep_epochs, dist_timeout=dist_timeout, augment=augment, ada_target=ada_target,
            log=tuple(log or ()),
            options=family_options)
        result = run_training(request, reporter=ui.TrainProgress(quiet=quiet), progress_for=progress.for_file,
                              warn=ui.warn)
        main = distributed.is_main()
    finally:
        distributed.stop()
    if not main:  # rank 0 of the job reports it
        return
    if launch.launched():  # for `ganctl train --nproc-per-node`, which reports it
        launch.write_result({"run_dir": str(result.run_dir), "epochs_done": result.epochs_done, "step": result.step,
                             "interrupted": result.interrupted, "checkpoint": result.checkpoint is not None})
        return
    _finish(model, result.run_dir, result.epochs_done, result.step, result.interrupted, result.checkpoint is not None,
            resume, quiet)


def _finish(model: str, run_dir: Path, epochs_done: int, step: int, interrupted: bool, saved: bool, resume: bool,
            quiet: bool) -> None:
    """What a finished (or stopped) training prints: its run folder on stdout, a hint on stderr."""
    rid = f"{run_dir.parent.name}/{run_dir.name}"
    if interrupted:
        ui.warn(
            f"stopped at epoch {epochs_done + 1}, step {step}; checkpoint saved. "
            f"Continue with: ganctl train {model} --resume --name {run_dir.name}"
        )
        ui.result(run_dir)
        raise typer.Exit(130)
    if not saved and resume:
        ui.info(f"run {rid} already has its {epochs_done} epochs: pass --epochs N to train further")
    elif not quiet:
        from ganctl.families import registry

        paired = registry.get(model).paired
        verb = "translate with it: 'ganctl translate IMAGE -o OUT --run" if paired else f"sample it with 'ganctl sample {model} --run"
        ui.info(f"done: run {rid}; {verb} {run_dir.name}'")
    ui.result(run_dir)


def _family_parameters() -> list[inspect.Parameter]:
    """``train``'s options that only some families take, from their registrations: each with its
    help, the families that take it, and a panel of its own (the first family's, by default)."""
    params: dict[str, inspect.Parameter] = {}
    for fam in registry.FAMILIES.values():
        for opt in fam.all_options():
            if opt.name in params:
                continue
            panel = opt.panel or fam.name
            if opt.switch_off:
                default, kind = typer.Option(False, opt.flag, help=_only(opt.flag, opt.help), rich_help_panel=panel), bool
            else:
                default = typer.Option(None, opt.flag, help=_only(opt.flag, opt.help), rich_help_panel=panel)
                kind = opt.type
            params[opt.name] = inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
    return list(params.values())


def register(app: typer.Typer) -> None:
    """``train`` with every registered family's own options added to its signature (typer reads
    the options from it), passed on to :func:`run_training` as they are."""
    sig = inspect.signature(train)
    fixed = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]

    @functools.wraps(train)
    def command(**kw):
        return train(**kw)

    command.__signature__ = sig.replace(parameters=[*fixed, *_family_parameters()])
    app.command(epilog=EXAMPLES, rich_help_panel="Train")(command)
