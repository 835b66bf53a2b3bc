"""Which generator file a command uses: the one resolver for sample, interpolate, translate,
evaluate and export.

In order: ``--checkpoint`` (a generator file, a checkpoint folder or a run folder), ``--pretrained``
(a model in the store, or a demo shipped in the package), ``--run`` (a run's newest readable
checkpoint), else the newest run of the family, else (where the command allows it) the only
pretrained model of the family in the store. A shipped demo is never chosen unasked: the no-run
error names it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ganctl.core.errors import CheckpointError, GanctlError
from ganctl.families import registry
from ganctl.store import genspec, layout, retention


@dataclass(frozen=True)
class Choice:
    path: Path  # the generator .safetensors file
    source: str  # "checkpoint", "pretrained", "run", "newest run" or "only pretrained"
    family: str
    run: layout.RunInfo | None = None
    pretrained: str | None = None

    def describe(self, direction: str | None = None) -> str:
        """The line a command shows about what it uses ('' for an explicit --checkpoint)."""
        extra = f", {direction}" if direction else ""
        if self.run is not None and self.source != "checkpoint":
            how = "" if self.source == "run" else "newest run, "
            folder = self.path.parent
            where = folder.name if folder.parent.name == "checkpoints" else f"{folder.parent.name}/{folder.name}"
            return f"using run {self.run.id} ({how}{where}{extra})"
        if self.source == "pretrained":
            return f"using pretrained model {self.pretrained}"
        if self.source == "only pretrained":
            return f"no {self.family} run in the store: using the pretrained model {self.pretrained}"
        return ""


def choose(family: str | None, *, run: str | None = None, checkpoint: Path | str | None = None,
           pretrained: str | None = None, only_pretrained: bool = False, required: bool = False,
           direction: str | None = None) -> Choice:
    """The generator file a command of ``family`` uses; a GanctlError saying what to do when there is none.

    ``run`` and ``checkpoint`` together: a checkpoint of that run (a folder name such as
    ``epoch_0010``, or a path). ``only_pretrained``: with no run of the family, use the only
    pretrained model of the family in the store. ``required``: no newest-run default (export).
    ``direction``: which of a run's generators, for a family with one each way (CycleGAN's
    AtoB is G_A, BtoA is G_B; default: the first its registration lists).
    Everything up to the no-run error is torch-free, so a mistake is answered at once.
    """
    if pretrained is not None and (run is not None or checkpoint is not None):
        raise GanctlError("give one of --run, --checkpoint and --pretrained" if not required
                          else "give exactly one of RUN, --checkpoint PATH or --pretrained NAME")
    if pretrained is not None:
        from ganctl.store import pretrained as store_models

        return Choice(store_models.generator_path(pretrained), "pretrained", family or "", pretrained=pretrained)
    if checkpoint is not None:

        path = Path(checkpoint).expanduser()
        info = layout.find_run(run, family) if run is not None else None
        if info is not None and not path.exists() and not path.is_absolute():
            path = info.path / "checkpoints" / str(checkpoint)
            if not path.exists():
                raise GanctlError(f"run {info.id} has no checkpoint {checkpoint}: its checkpoints are in {info.path / 'checkpoints'}")
        return Choice(_checked_in_run(resolve_checkpoint(path, direction)), "checkpoint", family or "", run=info)
    if required and run is None:
        raise GanctlError("give exactly one of RUN, --checkpoint PATH or --pretrained NAME")
    if family is None and run is None:
        raise GanctlError("name the model family or the run")
    info = layout.find_run(run, family) if run is not None else layout.newest_run(family)
    if info is not None:

        return Choice(generator_file(info, direction), "run" if run else "newest run", info.family, run=info)
    if only_pretrained:
        from ganctl.store import pretrained as store_models

        found = [m for m in store_models.installed() if m["meta"].get("family", family) == family]
        if len(found) == 1:
            return Choice(Path(found[0]["path"]), "only pretrained", family, pretrained=found[0]["name"])
        if found:
            names = ", ".join(f["name"] for f in found)
            raise GanctlError(f"no {family} run in the store and several pretrained models ({names}): "
                              "choose one with --pretrained NAME")
        raise GanctlError(
            f"no {family} model in the store: train one ('ganctl train {family} --dataset synthetic-facades') "
            "or download a pretrained one ('ganctl download facades_label2photo')"
        )
    raise GanctlError(no_run_message(family))


def choose_each(family: str | None, *, run: str | None = None, checkpoint: Path | str | None = None,
                direction: str | None = None, required: bool = False) -> dict[str, Choice]:
    """{direction: Choice} of a model with a generator each way (a CycleGAN run or checkpoint
    folder: G_A for AtoB, G_B for BtoA), all from the one checkpoint :func:`choose` picks for the
    first; with ``direction``, or for a single generator file, what :func:`choose` picks alone, keyed
    by the direction its spec names ("" for a model that translates no way). Torch-free."""
    first = choose(family, run=run, checkpoint=checkpoint, direction=direction, required=required)
    spec = genspec.read_file(first.path)
    made = spec.get("direction") or ""
    folder = first.path.parent
    try:
        nets = registry.networks(spec["arch"])
    except KeyError:  # an arch this ganctl does not know: it is one generator
        return {made: first}
    in_set = len(nets.uses) > 1 and folder.name in nets.names("generator") and not (folder.parent / genspec.GENERATOR).exists()
    if direction is not None or not in_set or _names_a_file(checkpoint, first):
        return {made: first}
    found = {made: first}
    for way, _ in nets.uses:
        if way not in found:
            found[way] = replace(choose(family, run=run, checkpoint=folder.parent, direction=way), source=first.source, run=first.run)
    return {way: found[way] for way, _ in nets.uses if way in found}


def _names_a_file(checkpoint: Path | str | None, choice: Choice) -> bool:
    """Whether ``--checkpoint`` named one generator file (of a run, when a run was given too)."""
    if checkpoint is None:
        return False
    given = Path(checkpoint).expanduser()
    return given.is_file() or (choice.run is not None and (choice.run.path / "checkpoints" / given).is_file())


def no_run_message(family: str) -> str:
    """What to do when there is no run of an image family: train one, or use a shipped demo
    (named, never substituted: a sample must not silently come from another model)."""
    from ganctl import demos

    shipped = demos.for_family(family)
    instead = f"use the shipped demo: --pretrained {shipped[0]}" if shipped else "pass --checkpoint"
    return f"no {family} run in the store: train one with 'ganctl train {family} --dataset digits', or {instead}"


def _each_way(folder: Path) -> dict[str, Path]:
    """The generators in the sub-folders of a checkpoint folder by the direction their spec names
    (a CycleGAN's G_A/ and G_B/); torch-free."""
    found = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        file = sub / genspec.GENERATOR
        if file.is_file():
            try:
                found.setdefault(genspec.read_file(file).get("direction") or sub.name, file)
            except CheckpointError:
                continue
    return found


def load(family: str, device: str, *, say: Callable[[str], None] | None = None, choice: Choice | None = None,
         **where):
    """The loaded generator (:class:`ganctl.use.inference.LoadedGenerator`) :func:`choose` picks (or
    ``choice``, already made), on ``device`` ("auto", "cpu", ...); ``say`` gets the line about what is used."""
    choice = choice or choose(family, **where)  # before torch is imported: a missing run is answered at once
    from ganctl.runtime import runtime
    from ganctl.use import inference

    gen = inference.load_generator(choice.path, runtime.resolve_device(device), family=family)
    if choice.source == "pretrained":  # the name as the file records it
        choice = replace(choice, pretrained=gen.meta.get("pretrained", choice.pretrained))
    made = gen.meta.get("family", family)
    translates = made in registry.FAMILIES and registry.get(made).translates
    line = choice.describe((gen.meta.get("direction") or "AtoB") if translates else None)
    if say and line:
        say(line)
    return gen


def _generator_in_checkpoint(run: layout.RunInfo, direction: str | None) -> str:
    """Where a run's generator for ``direction`` lies inside each of its checkpoint folders."""
    try:
        nets = registry.networks(run.config()["arch"])
    except KeyError:  # an arch this ganctl does not know is reported where the config is checked
        return genspec.GENERATOR
    if len(nets.uses) == 1 and direction is not None and direction != nets.uses[0][0]:
        raise GanctlError(f"--direction applies to models with a generator each way; run {run.id} translates "
                          "one way (the direction it was trained in)")
    return nets.file(nets.generator_for(direction if len(nets.uses) > 1 else None)[1])


def generator_file(run: layout.RunInfo, direction: str | None = None) -> Path:
    """The newest readable generator of a run (the one ``latest`` names if it reads), with a
    warning on stderr for each newer one that does not; ``direction`` picks one of a CycleGAN's two.
    A StoreError if its config.json is damaged."""
    run.check()
    inside = _generator_in_checkpoint(run, direction)
    skipped = []
    for ckpt in retention.candidates(run.path):
        path = ckpt / inside
        if not path.is_file():
            continue
        try:
            genspec.read_file_meta(path)  # checks the header and that the file is complete
        except CheckpointError as e:
            skipped.append(str(e))
            continue
        for problem in skipped:
            print(f"warning: skipping {problem}; using {path}", file=sys.stderr)
        return path
    if skipped:  # deleting the run would cost its config, metrics and pictures too: none of that is damaged
        raise CheckpointError(f"run {run.id} has no readable checkpoint ({'; '.join(skipped)}): make a file readable "
                              "or restore it from a copy, or train again under another --name")
    raise CheckpointError(
        f"run {run.id} has no checkpoint yet (it saves one at the end of each epoch): "
        f"train it with 'ganctl train {run.family} --resume --name {run.name}'"
    )


def _checked_in_run(path: Path) -> Path:
    """``path`` (a generator file) if it reads; if it is a checkpoint of a run and does not, a
    CheckpointError that names the run's checkpoints that do read, so one damaged file does not
    look like a lost run."""
    ckpt, inside = path.parent, genspec.GENERATOR
    if ckpt.parent.parent.name == "checkpoints":  # NAME/generator.safetensors of a network set (CycleGAN)
        ckpt, inside = ckpt.parent, f"{ckpt.name}/{genspec.GENERATOR}"
    run_dir = ckpt.parent.parent
    if ckpt.parent.name != "checkpoints" or not (run_dir / "config.json").is_file():
        return path  # any other file: read (and its faults said) by whoever loads it
    try:
        genspec.read_file_meta(path)
    except CheckpointError as e:
        others = []
        for other in retention.candidates(run_dir):
            try:
                if other != ckpt and (other / inside).is_file():
                    genspec.read_file_meta(other / inside)
                    others.append(other.name)
            except CheckpointError:
                continue
        if not others:
            raise
        raise CheckpointError(f"{e}; the run's checkpoints that load: {', '.join(others)} (give one to --checkpoint, "
                              f"e.g. {run_dir / 'checkpoints' / others[0]})") from e
    return path


def resolve_checkpoint(path: Path, direction: str | None = None) -> Path:
    """Accept a generator file, a checkpoint folder (a CycleGAN's holds one generator each way:
    ``direction`` picks, AtoB by default), or a run folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / genspec.GENERATOR).is_file():
            return path / genspec.GENERATOR
        if (path / "config.json").is_file():
            return generator_file(layout.RunInfo(path.parent.name, path.name, path), direction)
        each_way = _each_way(path)
        if each_way:
            want = direction or "AtoB"
            if want not in each_way:
                raise CheckpointError(f"{path} holds no generator for {want} (it has {', '.join(sorted(each_way))})")
            return each_way[want]
        raise CheckpointError(f"{path} holds no {genspec.GENERATOR}: give a generator file or a run folder")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path
