"""Every default written once: each option of `r2r` and `synfashion` is declared on the config dataclass field it
fills (synfashion/cliutil.py), so the default `--help` shows is that field's; the few options written by hand fill
no config field. Plus the helper itself, and the layering it serves (argparse only in the command modules, no torch
behind `r2r --help`)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from r2r.cli import build_parser
from r2r.dki.config import NegativeConfig, PositiveConfig
from synfashion.cli import make_parser
from synfashion.cliutil import (
    DefaultsHelpFormatter, add_options, comma_text, comma_tuple, field_default, from_args, option, reuse,
)

ROOT = Path(__file__).resolve().parents[1]
# Options whose default is the command's, not its field's: a DKI method's own training defaults (class constants of
# its config); --lr not given is filled by the handler (it depends on --full).
COMMAND_DEFAULTS = {("r2r train-negative", "--steps"): NegativeConfig.STEPS, ("r2r train-negative", "--lr"): None,
                    ("r2r train-positive", "--steps"): PositiveConfig.STEPS, ("r2r train-positive", "--lr"): None}

# Options written by hand (they fill no config field) whose default is more than off / unset, and why.
HAND_WRITTEN_DEFAULTS = {
    ("synfashion sample", "--workers"): "generate_sample's process count (same bytes with any): the machine's cores",
    ("synfashion build", "--workers"): "build_dataset's process count (same bytes with any): the machine's cores",
    ("synfashion verify", "--workers"): "verify_dataset's process count: the machine's cores",
    ("synfashion hub-server", "--port"): "the local test server's port (a server records no settings), as the "
                                         "README's export line spells it",
}


def _subcommands() -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    for prog, parser in (("r2r", build_parser()), ("synfashion", make_parser())):
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        out += [(f"{prog} {name}", sub) for name, sub in action.choices.items()]
    return out


def _entries(help_text: str) -> dict[str, str]:
    """Option string -> its help entry (the lines from the option to the next one), whitespace collapsed."""
    entries, current = {}, None
    for line in help_text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+|[a-z_]+)\b", line)
        if m:
            current = m.group(1)
            entries[current] = line
        elif current and line.startswith("      "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


SUBCOMMANDS = _subcommands()


@pytest.mark.parametrize("command,parser", SUBCOMMANDS, ids=[c for c, _ in SUBCOMMANDS])
def test_every_default_shown_is_the_dataclass_field(command, parser):
    entries = _entries(parser.format_help())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue  # -h, and hidden deprecated aliases (they share their new name's dest)
        flag = action.option_strings[0] if action.option_strings else action.dest
        ref = getattr(action, "config", None)
        if ref is None:  # written by hand: fills no config field, so nothing to repeat
            assert action.default in (None, False) or (command, flag) in HAND_WRITTEN_DEFAULTS, \
                f"{command} {flag}: default {action.default!r} written by hand; declare it on the config field"
            continue
        opt, default = ref.option, ref.default
        if default != field_default(ref.cls, ref.name):  # the command's own: a class constant of a config, or None
            assert COMMAND_DEFAULTS[(command, flag)] == default, f"{command} {flag}: {default!r}"
        if default is dataclasses.MISSING:
            assert action.required or not action.option_strings, f"{command} {flag}: a field without default"
            continue
        # what the command line gives when the option is not used is the field's default, exactly
        assert opt.value(action.default, default) == default, f"{command} {flag}: {action.default!r} != {default!r}"
        if opt.switch(default):
            assert action.nargs == 0 and (flag.startswith("--no-") == default), f"{command} {flag}"
            continue
        entry = entries[flag]
        if action.default is not None:
            shown = "''" if action.default == "" else str(action.default)
            assert f"(default: {shown})" in entry or "default" in (action.help or "").lower(), \
                f"{command} {flag}: {entry!r}"
        elif default not in (None, ()):
            assert "default" in entry, f"{command} {flag}: the help must say what not using it gives: {entry!r}"


def test_the_walk_covers_both_commands():
    names = {c for c, _ in SUBCOMMANDS}
    assert {"r2r translate-images", "r2r translate-dataset", "r2r evaluate", "r2r ablate", "r2r train-negative",
            "r2r train-positive", "r2r downstream", "r2r report", "r2r study-page", "r2r tiny-model", "r2r evaluate-stats",
            "synfashion sample", "synfashion build", "synfashion push", "synfashion pull"} <= names
    declared = sum(hasattr(a, "config") for _, p in SUBCOMMANDS for a in p._actions)
    by_hand = sum(not hasattr(a, "config") and not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS
                  for _, p in SUBCOMMANDS for a in p._actions)
    # by hand: each with its reason beside it (--no-progress and the exit-status flags are no setting; the table
    # commands have no config); 61 once evaluate-stats and evaluate-table --space came
    assert declared > 200 and by_hand <= 61, (declared, by_hand)


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_a_bare_command_line_builds_the_dataclass_defaults():
    from r2r.commands.ablate import config_from_args
    from r2r.commands.dki import negative_run, positive_run
    from r2r.commands.downstream import config_of
    from r2r.commands.translate import model_spec, rig_params, size_policy
    from r2r.config import ModelSpec, RIGParams
    from r2r.dki.config import DataConfig, NegativeConfig, PositiveConfig, RunConfig, TrainConfig
    from r2r.downstream.config import DEFAULT_MODEL, DownstreamConfig, TrainSource
    from r2r.evaluation.ablate import AblateConfig
    from r2r.evaluation.run import EvalJob, MetricSettings
    from r2r.pages.images import PictureSettings
    from r2r.pages.report import ReportSettings
    from r2r.pages.study import StudySettings
    from r2r.tiny import TinyModelConfig
    from r2r.translate.job import DatasetJob, TranslateJob
    from r2r.translate.sizes import SizePolicy
    from synfashion.build import BuildConfig
    from synfashion.release.scan import ScanConfig
    from synfashion.sample import SampleConfig
    from synfashion.splits import SplitConfig

    args = _parse(["translate-images", "--input", "i", "--output", "o", "--model", "m"])
    assert (model_spec(args), rig_params(args), size_policy(args)) == (ModelSpec("m"), RIGParams(), SizePolicy())
    assert from_args(TranslateJob, args, model=ModelSpec("m")) == TranslateJob(Path("i"), Path("o"), ModelSpec("m"))
    args = _parse(["translate-dataset", "s", "o", "--model", "m"])
    assert from_args(DatasetJob, args, model=ModelSpec("m")) == DatasetJob("s", Path("o"), ModelSpec("m"))
    args = _parse(["evaluate", "--translated", "t", "--real", "r", "--out", "o"])
    assert from_args(EvalJob, args) == EvalJob(translated=Path("t"), real="r", out=Path("o"))
    args = _parse(["ablate", "s", "o", "--model", "m", "--real", "r"])
    assert config_from_args(args) == AblateConfig("s", Path("o"), ModelSpec("m"), MetricSettings("r"))
    args = _parse(["downstream", "--train", "a=x", "--out", "o"])
    assert config_of(args) == DownstreamConfig((TrainSource("a", "x"),), "o", model=DEFAULT_MODEL)
    args = _parse(["train-negative", "--model", "m", "--renders", "r", "--out", "o"])
    assert negative_run(args) == RunConfig("m", "o", DataConfig("r", captions="none"),
                                           TrainConfig(steps=NegativeConfig.STEPS, lr=NegativeConfig.LR))
    args = _parse(["train-positive", "--model", "m", "--real", "r", "--out", "o"])
    assert positive_run(args) == RunConfig("m", "o", DataConfig("r"), TrainConfig(steps=PositiveConfig.STEPS,
                                                                                  lr=PositiveConfig.LR),
                                           PositiveConfig())
    args = _parse(["train-positive", "--model", "m", "--real", "r", "--out", "o", "--full"])
    assert positive_run(args).train.lr == PositiveConfig.LR_FULL
    args = _parse(["report", "x.json"])
    assert from_args(ReportSettings, args) == ReportSettings() and from_args(PictureSettings, args) == \
        PictureSettings()
    assert from_args(StudySettings, _parse(["study-page", "x.json", "--out", "o"])) == StudySettings()
    assert from_args(TinyModelConfig, _parse(["tiny-model", "o"])) == TinyModelConfig()
    args = make_parser().parse_args(["sample", "o"])
    assert from_args(SampleConfig, args) == SampleConfig()
    args = make_parser().parse_args(["build", "src", "o"])
    assert (from_args(SplitConfig, args), from_args(ScanConfig, args)) == (SplitConfig(), ScanConfig())
    assert from_args(BuildConfig, args) == BuildConfig()


def test_the_rig_defaults_of_the_pipeline_and_schedule_are_rigparams():
    import inspect

    from r2r.config import RIGParams
    from r2r.rig.pipeline import R2RPipeline
    from r2r.rig.schedule import RIGSchedule
    from r2r.rig.tac import TACConfig

    call = inspect.signature(R2RPipeline.__call__).parameters
    for f in dataclasses.fields(RIGParams):
        assert call[f.name].default == field_default(RIGParams, f.name), f.name
    create = inspect.signature(RIGSchedule.create).parameters
    assert (create["num_inference_steps"].default, create["strength"].default) == (
        RIGParams.num_inference_steps, RIGParams.strength)
    assert (TACConfig().ratio, TACConfig().layers) == (RIGParams.tac_ratio, RIGParams.tac_layers)


# --- the helper ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Toy:
    name: str = option("name", help="a positional")
    path: Path = option("--path", type=Path, help="required")
    level: int = option("--level", default=3, type=int, help="a number")
    tags: tuple[str, ...] = option("--tags", default=("a", "b"), parse=comma_tuple, show=comma_text, help="tags")
    item: tuple[str, ...] = option("--item", default=("x",), append=True, help="repeatable (default {default})")
    loud: bool = option("--loud", default=False, help="a switch")
    cache: bool = option("--no-cache", default=True, help="a switch that turns a True field off")
    limit: int | None = option("--limit", default=None, type=lambda t: None if t == "none" else int(t), help="n")
    internal: int = 7  # no option


@dataclasses.dataclass(frozen=True)
class _Other:
    level: int = reuse(_Toy, "level", help="the same setting elsewhere")


def _toy_parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    add_options(p, _Toy, **kw)
    return p


def test_helper_round_trip():
    p = _toy_parser()
    assert from_args(_Toy, p.parse_args(["n", "--path", "p"])) == _Toy("n", Path("p"))
    args = p.parse_args(["n", "--path", "p", "--level", "4", "--tags", "c, d,", "--item", "y", "--item", "z",
                         "--loud", "--no-cache", "--limit", "none"])
    assert from_args(_Toy, args, internal=8) == _Toy("n", Path("p"), 4, ("c", "d"), ("y", "z"), True, False, None, 8)
    assert from_args(_Toy, p.parse_args(["n", "--path", "p", "--limit", "5"])).limit == 5
    text = " ".join(p.format_help().split())
    assert "--level LEVEL a number (default: 3)" in text and "--tags TAGS tags (default: a,b)" in text
    assert "repeatable (default x)" in text and "--loud a switch" in text
    with pytest.raises(SystemExit):
        p.parse_args(["n"])  # --path is required: its field has no default


def test_helper_flags_helps_defaults_and_reuse():
    p = _toy_parser(names=("name", "path", "level"), flags={"level": "--depth"}, helps={"level": "how deep"},
                    defaults={"level": 9})
    args = p.parse_args(["n", "--path", "p"])
    assert args.depth == 9 and from_args(_Toy, args, flags={"level": "--depth"}).level == 9
    assert not hasattr(args, "tags") and from_args(_Toy, args, flags={"level": "--depth"}).tags == ("a", "b")
    assert "how deep (default: 9)" in " ".join(p.format_help().split())
    q = argparse.ArgumentParser()
    (action,) = add_options(q, _Other).values()
    assert action.default == 3 and action.help == "the same setting elsewhere" and action.config.cls is _Other
    assert from_args(_Other, q.parse_args(["--level", "5"])) == _Other(5)


# --- the layering --------------------------------------------------------------------------------------------------
def test_argparse_lives_only_in_the_command_modules():
    allowed = {"r2r/cli.py", "r2r/cliargs.py", "synfashion/cli.py", "synfashion/cliutil.py"}
    offenders = []
    for package in ("r2r", "synfashion", "loaders"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in allowed or rel.startswith(("r2r/commands/", "synfashion/commands/")):
                continue
            text = path.read_text(encoding="utf-8")
            if "add_argument(" in text or "add_parser(" in text or "import argparse" in text:
                offenders.append(rel)
    assert offenders == []


def test_help_imports_no_torch():
    code = ("import sys, r2r.cli, synfashion.cli; r2r.cli.build_parser(); synfashion.cli.make_parser(); "
            "print(sorted({'torch', 'diffusers', 'transformers', 'accelerate'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
