"""`damoc prune`: DaMoC's model lever on its own."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damoc.cli.common import (
    add_config_flag,
    add_task_flags,
    load_options_from_flags,
    load_sections,
    run_file,
    task_source,
)
from damoc.cli.data import OVERWRITE_HELP
from damoc.cli.options import DEST, Section, add_sections, config_from, value
from damoc.cli.printing import table
from damoc.errors import DamocError

HELP = {"prune": "remove the decoder layers that change their input least; save a loadable model"}


def add_prune(sub) -> None:
    from damoc.layers import PruneConfig
    from damoc.selection.config import SelectConfig

    p = sub.add_parser(
        "prune", help=HELP["prune"],
        description="Measures each decoder layer's mean cosine similarity between its input and output hidden "
                    "states on calibration text, removes the most similar layers (at or above --threshold, at "
                    "most --max-fraction of them, never the first or last), folds them into their nearest "
                    "retained layer (--merge) and saves a normal safetensors model folder with "
                    "damoc-prune.json and similarity.png. Merges: none (drop); difference (LaCo: add the layer "
                    "difference, needs no other model); sparse (DaMoC: add the removed layer's sparsified task "
                    "vector against --base, the pre-trained weights). Settings: flags > --config RUN.yaml "
                    "(PruneConfig's fields) > defaults.")
    add_config_flag(p, "PruneConfig's fields")
    p.add_argument("--model", required=True, help="the model to prune (bundled:NAME, folder or hub id)")
    p.add_argument("--base", help="pre-trained weights of the same architecture (for --merge sparse)")
    p.add_argument("--calibration", help="bundled task name or a file (.txt: one text per line; "
                                         ".jsonl/.json/.csv/.parquet: text-like fields); default: --task/--data")
    p.add_argument("--out", type=Path, required=True, help="output model folder (must not exist, see --overwrite)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    add_task_flags(p)
    # --calibration-samples is `select`'s field: one setting, one default, for both commands
    add_sections(p, [Section(PruneConfig, title="pruning"),
                     Section(SelectConfig, only={"calibration_samples"}, title="calibration"), *load_sections()])
    p.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> None:
    from damoc.inputs import check_output_names
    from damoc.io import check_output_folder
    from damoc.layers import PruneConfig, prune_model, save_pruned
    from damoc.layers.calibration import calibration_texts
    from damoc.models import load_model, load_tokenizer
    from damoc.tasks import TaskSource

    config = config_from(args, PruneConfig, run_file(args))
    check_output_names(args.out)
    check_output_folder(args.out, args.overwrite)
    if config.merge == "sparse" and not args.base:
        raise DamocError("--merge sparse needs --base: the pre-trained weights of the same architecture "
                         "(or use --merge difference, which needs none)")
    examples = None
    if args.calibration is None:
        examples = task_source(args).load().train
    from damoc.selection.config import SelectConfig

    texts = calibration_texts(args.calibration, examples, value(args, SelectConfig, "calibration_samples"),
                              config.seed)
    options = load_options_from_flags(args)
    tokenizer = load_tokenizer(args.model, options)
    model = load_model(args.model, options).eval()
    base = load_model(args.base, options).eval() if args.base and config.merge == "sparse" else None
    result = prune_model(model, tokenizer, texts, config, base_model=base, progress=True)
    rows = [{"layer": i, "similarity": f"{s:.4f}",
             "action": (f"removed, merged into {result.merged_into[i]}" if config.merge != "none" else "removed")
             if i in result.removed else ""} for i, s in enumerate(result.similarity)]
    table(["layer", "similarity", "action"], rows)
    if not result.removed:
        from damoc.layers.similarity import layer_cap

        cap = layer_cap(result.layers_before, config.max_fraction)
        print(f"at most {config.max_fraction * 100:g}% of {result.layers_before} layers is none: nothing removed "
              "(raise --max-fraction)" if cap == 0 else
              f"no inner layer reaches similarity {config.threshold}: nothing removed", file=sys.stderr)
    source = args.calibration or value(args, TaskSource, "task") or getattr(args, DEST + "data.path", None)
    info = {"model": args.model, "base": args.base, "config": config.model_dump(mode="json"),
            "calibration": str(source), "calibration_texts": len(texts)}
    save_pruned(model, tokenizer, args.out, result, info, overwrite=args.overwrite)
    print(f"removed {len(result.removed)} of {result.layers_before} layers "
          f"(similarity >= {config.threshold}, at most {config.max_fraction * 100:g}%) -> {args.out}", file=sys.stderr)
