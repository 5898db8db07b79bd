"""`damoc recover`: choose the data that recovers a pruned model (random, PASER, ...) and train on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from damoc.cli.common import add_config_flag, run_file
from damoc.cli.options import Section, add_sections, config_from

HELP = {"recover": "choose the instruction data that recovers a pruned model, and recover it (--train)"}


def add_recover(sub) -> None:
    from damoc.finetune import FinetuneConfig
    from damoc.recovery.run import RecoverConfig

    p = sub.add_parser(
        "recover", help=HELP["recover"],
        description="Chooses a subset of the instruction pool (--method; the default, random, with --targets "
                    "distill is what beat the other choices in bench/results/recover-methods.json) and, with "
                    "--train, recovers the pruned model on it with LoRA. --method paser clusters the pool's "
                    "instructions (sentence embeddings, diffusion kernel on a sparse "
                    "nearest-neighbour graph, NMF), measures each sample's degradation as the JSD between the "
                    "original and pruned models' next-token distributions, shares the budget among clusters "
                    "by degradation, and picks samples by JSD / log(tokens) while keeping the concept graph "
                    "consistent. --budget counts samples, --budget-tokens answer tokens (every method's order cut "
                    "there); --targets self trains on the original model's own answers to the chosen prompts, "
                    "--targets distill on the pool's answers and the original model's next-token distributions. "
                    "Writes OUT/subset.jsonl, OUT/summary.json, OUT/report.md and OUT/report.html. "
                    "Settings: flags > --config RUN.yaml (RecoverConfig's fields) > defaults.")
    add_config_flag(p, "RecoverConfig's fields")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    add_sections(p, [Section(RecoverConfig, title="selection"),
                     Section(FinetuneConfig, path="finetune", prefix="finetune.", exclude={"method", "seed"},
                             title="recovery training (with --train)")])
    p.set_defaults(func=cmd_recover)


def cmd_recover(args: argparse.Namespace) -> None:
    from damoc.inputs import check_output_names
    from damoc.recovery.run import RecoverConfig, run_recover

    config = config_from(args, RecoverConfig, run_file(args))
    check_output_names(args.out)
    from damoc.report.recovery import summary_of, trained_on
    from damoc.report.text import num

    s = summary_of(run_recover(config, args.out, progress=True))
    print(f"{s.method}: {s.selected} of {s.pool_size} samples selected ({s.answer_tokens} answer tokens) in "
          f"{s.select_seconds:.1f} s")
    if (t := s.self_targets) is not None:
        print(f"answers by the original model: {t.kept} kept ({t.answer_tokens} tokens), {t.empty_dropped} "
              f"empty and {t.too_long_dropped} too long dropped; {t.cached} of {t.generated} from the cache; "
              f"{t.generation_flops:.3g} FLOPs")
    if s.clusters is not None:
        print(f"{s.clusters} clusters; budget per cluster {s.cluster_budget}; "
              f"{s.rejected_by_concept_graph} samples rejected by the concept graph")
    if (rec := s.recovery) is not None:
        print(f"recovery trained on {trained_on(s)}")
        for name, r in (("original", rec.original), ("pruned", rec.pruned), ("recovered", rec.recovered)):
            accuracy = num(None if r.avg_accuracy is None else 100 * r.avg_accuracy, ".1f")
            print(f"{name:>9}: external perplexity {num(r.external_ppl)}, held-out answer NLL "
                  f"{num(r.nll.nll, '.3f')}, mean zero-shot accuracy {accuracy}% over {', '.join(r.accuracy)}")
    print(f"subset: {Path(args.out) / 'subset.jsonl'}\nreport: {Path(args.out) / 'report.html'}")
