"""`r2r ablate`: arguments into an `AblateConfig` (the full method's model and RIG settings, the variants, the
translation and the metric settings), then one run (r2r/evaluation/ablate.py).

Every option comes from the field it fills: AblateConfig's (its translation settings are translate-dataset's
`DatasetJob` fields, reused), ModelSpec's, RIGParams', SizePolicy's, MetricSettings'. No torch import here.
"""

from __future__ import annotations

import argparse

from synfashion.cliutil import NO_PROGRESS_HELP, add_options, from_args

from ..cliargs import add_parser
from ..evaluation.ablate import RECORD, AblateConfig
from ..evaluation.run import MetricSettings
from .evaluate import METRIC_OPTIONS
from .translate import add_model_options, add_rig_options, model_spec, rig_params, size_policy

# the metric networks' device and batch: --device and --batch-size are the translation's here
EVAL_FLAGS = {"device": "--eval-device", "batch_size": "--eval-batch-size"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers, "ablate", help="the paper's ablation table: each variant translated and scored on the same images",
        description="Translates the same source images with the full method and each variant (without the negative "
                    "embedding, without positive DKI, without TAC, the standard inversion order, and any --sweep), "
                    "each into OUT/<variant>/ as a translated dataset, scores each with r2r evaluate into "
                    "OUT/eval/<variant>.json against the same real photos, and prints the table (also written to "
                    "OUT/ablation.md and OUT/ablation.csv; OUT/ablation.json records the variants and the images). "
                    "A variant whose artifact was not given is left out, saying why. Run it again to resume; finished "
                    "variants are reused.",
    )
    add_options(p, AblateConfig, ("source", "out", "split", "categories", "limit", "revision"))
    add_model_options(p)
    add_rig_options(p, AblateConfig)
    add_options(p.add_argument_group("ablation"), AblateConfig, ("variants", "sweeps", "per_category"))
    add_options(p.add_argument_group("translated datasets"), AblateConfig,
                ("allow_rejected", "shard_size", "formats", "num_workers"))
    e = p.add_argument_group("evaluation (r2r evaluate)")
    add_options(e, MetricSettings, ("real", *METRIC_OPTIONS, "device", "batch_size"), flags=EVAL_FLAGS,
                helps={"device": "device of the metric networks: auto (cuda when available), cpu, cuda or cuda:N"})
    add_options(p, AblateConfig, ("overwrite",))
    p.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)  # run_ablation()'s, no setting
    p.set_defaults(func=_cmd_ablate)


def config_from_args(args: argparse.Namespace) -> AblateConfig:
    evaluation = from_args(MetricSettings, args, flags=EVAL_FLAGS)
    return from_args(AblateConfig, args, model=model_spec(args), evaluation=evaluation, params=rig_params(args),
                     size=size_policy(args))


def _cmd_ablate(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from ..evaluation.ablate import EVAL_DIR, run_ablation
    from ..progress import stderr_console

    report = run_ablation(config_from_args(args), progress=not args.no_progress)
    console = stderr_console()
    console.print(f"[green]ablation[/] {escape(str(report.out))}: {len(report.variants)} variant(s) on the same "
                  f"{report.selection['n']} image(s); table in {escape(str(report.out / 'ablation.md'))} and "
                  f"ablation.csv, record in {RECORD}", highlight=False)
    if report.problems:
        console.print(f"[yellow]{report.problems} problem(s)[/]: unpaired / unreadable / untranslated images, listed "
                      f"in the eval JSONs under {escape(str(report.out / EVAL_DIR))}", highlight=False)
        return 1
    return 0
