"""`damoc filter` and `damoc compress`: DaMoC's data levers on their own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from damoc.cli.common import (
    add_config_flag,
    add_task_flags,
    run_file,
    task_source,
)
from damoc.cli.options import Section, add_sections, config_from, given
from damoc.errors import DamocError

HELP = {"filter": "keep a representative or high-quality share of a task's training data",
        "compress": "drop low-information words from training contexts, keeping their meaning"}
OVERWRITE_HELP = "replace --out if damoc made it earlier (never a file or folder damoc did not write)"


def add_filter(sub) -> None:
    from damoc.filtering import SELECTORS
    from damoc.filtering.embeddings import BUNDLED_EMBEDDER
    from damoc.models.bundled import BUNDLED_SCORER
    from damoc.selection.config import FilterSettings

    p = sub.add_parser("filter", help=HELP["filter"],
                       description="Selectors: " + "; ".join(f"{n}: {SELECTORS.info(n)['description']}"
                                                            for n in SELECTORS)
                       + ". Settings: flags > --config RUN.yaml (FilterSettings' fields) > defaults.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flag(p, "FilterSettings' fields (method, rate or budget, options)")
    p.add_argument("--out", type=Path, required=True, help="selected examples (.jsonl); a .summary.json goes beside")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--embedder", help=f"sentence-transformers model (default {BUNDLED_EMBEDDER})")
    p.add_argument("--scorer", help=f"causal LM for perplexity / IFD (default {BUNDLED_SCORER})")
    p.add_argument("--seed", type=int, default=0, help="seed of the random and sampled selectors (default %(default)s)")
    add_task_flags(p)
    add_sections(p, [Section(FilterSettings, title="selection")])
    p.set_defaults(func=cmd_filter)


def cmd_filter(args: argparse.Namespace) -> None:
    from damoc.filtering import filter_examples
    from damoc.filtering.run import write_selection
    from damoc.inputs import check_output_names
    from damoc.io import check_output_file
    from damoc.selection.config import FilterSettings

    check_output_names(args.out)
    check_output_file(args.out, args.overwrite, (".summary.json",))
    settings = config_from(args, FilterSettings, run_file(args))
    task = task_source(args).load()
    options = dict(settings.options)
    if args.embedder and settings.method in ("graphcut", "facility-location", "hybrid"):
        options["embedder"] = args.embedder
    if args.scorer and settings.method in ("perplexity", "ifd", "hybrid"):
        options["scorer"] = args.scorer
    kept, summary = filter_examples(task.train, settings.method, rate=settings.rate, budget=settings.budget,
                                    seed=args.seed, **options)
    summary["task"] = task.name
    write_selection(kept, summary, args.out)
    print(json.dumps(summary, indent=2))
    print(f"kept {len(kept)} of {len(task.train)} training examples -> {args.out}", file=sys.stderr)


def add_compress(sub) -> None:
    from damoc.tokens import CompressConfig

    p = sub.add_parser(
        "compress", help=HELP["compress"],
        description="Scores every token of each example's context by its surprisal under a small causal LM, "
                    "keeps the most informative words up to --ratio of the tokens, and checks meaning with "
                    "BERTScore rescaled by a baseline measured on the data (0 = as similar as an unrelated "
                    "context, 1 = identical). Contexts below --threshold are rewritten by an instruct LLM "
                    "(with --rewriter), then compressed more mildly, then left whole: none is emitted below the "
                    "threshold. Questions, options and answers are never touched. Writes OUT, "
                    "OUT.records.jsonl (per example) and OUT.summary.json. The defaults: 97% of PubMedQA "
                    "contexts pass 0.7 at ratio 0.5 (none pass 0.9); the bundled 135M rewriter rescued none "
                    "of 100 PubMedQA contexts on a CPU, so rewriting is off unless --rewriter names one. "
                    "Settings: flags > --config RUN.yaml (CompressConfig's fields) > defaults.")
    add_config_flag(p, "CompressConfig's fields")
    p.add_argument("--examples", type=Path, help="compress a `damoc filter` output instead of a task's training split")
    p.add_argument("--limit", type=int, help="only the first N examples")
    p.add_argument("--out", type=Path, required=True, help="compressed examples (.jsonl)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_task_flags(p)
    add_sections(p, [Section(CompressConfig, title="compression")])
    p.set_defaults(func=cmd_compress)


def cmd_compress(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from damoc.filtering.run import read_selection
    from damoc.inputs import DATA_FILE_LIMIT, check_input_file, check_output_names
    from damoc.io import check_output_file, outputs_record, write_json_atomic, write_jsonl_atomic
    from damoc.tokens import CompressConfig, compress_examples

    config = config_from(args, CompressConfig, run_file(args))
    check_output_names(args.out)
    check_output_file(args.out, args.overwrite, (".records.jsonl", ".summary.json"))
    if args.examples is not None:
        if given(args, "task") or given(args, "data.path"):
            raise DamocError("give either --examples (a `damoc filter` output) or --task/--data, not both")
        check_input_file(args.examples, "--examples", DATA_FILE_LIMIT)
        try:
            examples = read_selection(args.examples)
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
            raise DamocError(f"{args.examples}: not a damoc examples file ({e})") from e
        source = str(args.examples)
    else:
        task = task_source(args).load()
        examples, source = task.train, task.name
    if args.limit:
        examples = examples[: args.limit]
    out, records, summary = compress_examples(examples, config, progress=not args.quiet)
    summary["source"] = source
    write_jsonl_atomic(args.out, (asdict(e) for e in out))
    write_jsonl_atomic(args.out.with_suffix(".records.jsonl"), records)
    summary["outputs"] = outputs_record(args.out, args.out.with_suffix(".records.jsonl"))
    write_json_atomic(args.out.with_suffix(".summary.json"), summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    print(f"compressed {summary['compressed_examples']} contexts to {summary['context_token_ratio']:.2f} "
          f"of their tokens -> {args.out}", file=sys.stderr)
