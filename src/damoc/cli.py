"""The `damoc` command: parses arguments, calls the library, prints. No logic of its own."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path
from typing import get_args

from damoc.errors import EXIT_USAGE, AllCandidatesFailed, DamocError
from damoc.io import check_output_file, check_output_folder
from damoc.registry import LazyChoices
from damoc.tasks.base import Format

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                 errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


def _add_task_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("task (a bundled name, or your own file)")
    g.add_argument("--task", help="bundled task name (see `damoc tasks list`)")
    g.add_argument("--data", type=Path, help="your data: .jsonl, .json, .csv or .parquet")
    g.add_argument("--format", choices=get_args(Format),
                   help="the format of --data")
    g.add_argument("--field", action="append", default=[], metavar="OURS=THEIRS",
                   help="map a field to a column of --data, e.g. --field label=y (repeatable); "
                        "ours: question, context, label, options, answer, instruction")
    g.add_argument("--labels", help="classification options, comma-separated (default: from data)")
    g.add_argument("--test-data", type=Path, help="a separate test file (default: split --data)")
    g.add_argument("--test-fraction", type=float, default=0.2, help="test share when splitting --data")


def _task_source(args) -> tuple[str | None, object]:
    from damoc.tasks import DataSpec

    if args.data is None:
        if not args.task:
            raise DamocError("give --task NAME (see `damoc tasks list`) or --data FILE --format FORMAT")
        return args.task, None
    if args.format is None:
        raise DamocError("--data needs --format (classification, multiple_choice, generation, instruction)")
    fields = {}
    for item in args.field:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours or not theirs:
            raise DamocError(f"--field {item!r}: write it as OURS=THEIRS, e.g. label=y")
        fields[ours.strip()] = theirs.strip()
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    return None, DataSpec(path=args.data, format=args.format, fields=fields, labels=labels,
                          test_path=args.test_data, test_fraction=args.test_fraction)


def _add_load_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-pickle", action="store_true",
                   help="also load .bin/.pt weights (pickle can run code: only for files you trust)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="run the model repository's own Python code (off by default)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    p.add_argument("--quantization", choices=["none", "4bit"], default="none",
                   help="4bit: NF4 weights, LoRA on top (QLoRA; CUDA and pip install 'damoc[gpu]')")


def _add_optim_args(p) -> None:
    """The flags `_finetune_config` reads."""
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs (default 1)")
    p.add_argument("--max-seq-len", type=int, default=512,
                   help="tokens per example; longer contexts are cut from their end (default 512)")
    p.add_argument("--batch-size", type=int, default=8, help="examples per optimizer step")
    p.add_argument("--micro-batch-size", type=int, default=4, help="examples per forward pass")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-4 LoRA, 2e-5 full)")
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank")
    p.add_argument("--seed", type=int, default=0)
    g = (p.add_argument_group("GPU-scale training (passed to transformers' Trainer)")
         if isinstance(p, argparse.ArgumentParser) else p)
    g.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute activations in the backward pass: less memory, about a third more compute")
    g.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], default="auto",
                   help="auto: bf16 when the weights are bf16 (CUDA); fp16 needs CUDA")
    g.add_argument("--optim", default="adamw_torch",
                   help="transformers optimizer: adamw_torch, adamw_torch_fused (CUDA), adamw_8bit, "
                        "paged_adamw_8bit (CUDA + bitsandbytes), adafactor, ...")
    g.add_argument("--deepspeed", type=Path, help="DeepSpeed JSON config (CUDA; pip install deepspeed)")
    g.add_argument("--fsdp", help="FSDP options, e.g. 'full_shard auto_wrap' (CUDA; launch with torchrun)")
    g.add_argument("--fsdp-config", type=Path, help="FSDP JSON config (with --fsdp)")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    _add_optim_args(p)
    p.add_argument("--train-limit", type=int, help="train on a seeded sample of N training examples")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test examples")
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64, help="generation length for generative tasks")
    p.add_argument("--no-generation", action="store_true",
                   help="generative tasks: score answer bits per byte only, skip ROUGE-L generation")


def _load_options(args):
    from damoc.models import LoadOptions

    return LoadOptions(args.allow_pickle, args.trust_remote_code, args.dtype,
                       quantization=getattr(args, "quantization", "none"))


def _finetune_config(args, method: str):
    from damoc.finetune import FinetuneConfig

    return FinetuneConfig(method=method, epochs=args.epochs, max_seq_len=args.max_seq_len,
                          batch_size=args.batch_size, micro_batch_size=args.micro_batch_size,
                          learning_rate=args.lr, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                          seed=args.seed, gradient_checkpointing=args.gradient_checkpointing,
                          mixed_precision=args.mixed_precision, optim=args.optim, deepspeed=args.deepspeed,
                          fsdp=args.fsdp, fsdp_config=args.fsdp_config)


# ---------------------------------------------------------------- commands


def cmd_models_list(args) -> None:
    from damoc.models.catalog import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    _table(["spec", "status", "licence", "description"], rows)


def cmd_models_prepare(args) -> None:
    from damoc.models import resolve_spec
    from damoc.models.bundled import BUNDLED_PREFIX, prepare_bundled

    if args.spec.startswith(BUNDLED_PREFIX):
        print(prepare_bundled(args.spec, force=args.force))
    else:
        print(resolve_spec(args.spec))


def cmd_tasks_list(args) -> None:
    from damoc.tasks import BUNDLED_TASKS, load_task

    rows = []
    for name in BUNDLED_TASKS:
        rows.append(load_task(name).summary())
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    _table(["name", "format", "train", "test", "metric", "description"], rows)


def cmd_tasks_show(args) -> None:
    from damoc.selection.baseline import sample_train
    from damoc.tasks import continuation, load_task
    from damoc.tasks.base import label_counts, label_warnings

    if args.name and args.data is None:
        args.task = args.name
    name, data = _task_source(args)
    task = load_task(name, data)
    info = task.summary()
    # What a run with these limits would use: the seeded training sample, the test split's first N.
    train = sample_train(task.train, args.train_limit, args.seed)
    test = task.test[: args.test_limit] if args.test_limit else task.test
    if args.train_limit or args.test_limit:
        info |= {"train_used": len(train), "test_used": len(test)}
        if task.is_choice:
            info |= {"train_used_labels": label_counts(train, task.format),
                     "test_used_labels": label_counts(test, task.format)}
    info["label_warnings"] = label_warnings(train, test, task.format)
    ex = task.train[0]
    info["example_prompt"] = ex.prompt
    info["example_answer"] = continuation(ex)
    if ex.options:
        info["options"] = list(ex.options)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    for k in ("name", "format", "train", "test", "train_used", "test_used", "train_labels", "test_labels",
              "train_used_labels", "test_used_labels", "metric", "description", "source", "licence"):
        if k in info:
            print(f"{k:>17}: {info[k]}")
    for line in info["label_warnings"]:
        print(f"          warning: {line}")
    print(f"\n--- example prompt (train[0]) ---\n{ex.prompt}\n--- answer ---\n{continuation(ex)!r}")
    if ex.options:
        print(f"--- options ---\n{list(ex.options)}")


def cmd_evaluate(args) -> None:
    from damoc.evaluation import evaluate
    from damoc.models import load_model, load_tokenizer
    from damoc.tasks import load_task

    name, data = _task_source(args)
    task = load_task(name, data)
    opts = _load_options(args)
    tok, model = load_tokenizer(args.model, opts), load_model(args.model, opts)
    test = task.test[: args.test_limit] if args.test_limit else task.test
    r = evaluate(model, tok, task, examples=test, max_len=args.max_seq_len,
                 batch_size=args.eval_batch_size, max_new_tokens=args.max_new_tokens,
                 generation=not args.no_generation, progress=True)
    print(json.dumps({"model": args.model, "task": task.name, "n": r.n, "metrics": r.metrics,
                      "eval_seconds": r.seconds, "truncated": r.truncated}, indent=2))


def cmd_finetune(args) -> None:
    from damoc.evaluation import evaluate
    from damoc.finetune import finetune
    from damoc.models import load_model, load_tokenizer
    from damoc.selection.baseline import sample_train
    from damoc.tasks import load_task

    if args.out:
        check_output_folder(args.out, args.overwrite)
    name, data = _task_source(args)
    task = load_task(name, data)
    config = _finetune_config(args, args.method)
    train = sample_train(task.train, args.train_limit, args.seed)  # bad limits fail before loading
    opts = _load_options(args)
    tok, model = load_tokenizer(args.model, opts), load_model(args.model, opts)
    model, stats = finetune(model, tok, train, config, progress=True)
    report = {"model": args.model, "task": task.name, "config": config.model_dump(), "train": stats.to_dict()}
    if not args.no_eval:
        test = task.test[: args.test_limit] if args.test_limit else task.test
        r = evaluate(model, tok, task, examples=test, max_len=config.max_seq_len,
                     batch_size=args.eval_batch_size, max_new_tokens=args.max_new_tokens,
                     generation=not args.no_generation, progress=True)
        report |= {"metrics": r.metrics, "eval_seconds": r.seconds}
    if args.out:
        from damoc.finetune.save import save_finetuned

        save_finetuned(model, tok, args.out, report, overwrite=args.overwrite)
        print(f"saved to {args.out}", file=sys.stderr)
    print(json.dumps(report, indent=2, default=str))


def cmd_baseline(args) -> None:
    from damoc.selection import BaselineConfig, Candidate, run_baseline

    name, data = _task_source(args)
    candidates = [Candidate(model=m, method=meth) for m in args.models for meth in args.methods]
    config = BaselineConfig(
        task=name, data=data, candidates=candidates,
        finetune=_finetune_config(args, "lora"), train_limit=args.train_limit,
        test_limit=args.test_limit, eval_batch_size=args.eval_batch_size,
        max_new_tokens=args.max_new_tokens, generation=not args.no_generation, seed=args.seed,
        allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code, dtype=args.dtype,
        quantization=args.quantization,
    )
    on_event = _progress_printer(len(candidates))
    try:
        summary = run_baseline(config, args.out, progress=True, on_event=on_event)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished candidates are kept in {args.out}; run the same command "
              "again to resume", file=sys.stderr)
        raise SystemExit(130) from None
    print_ranking(summary)
    print(f"\nresults: {Path(args.out) / 'results.json'}")
    _fail_if_none_ranked(summary, args.out)


def _progress_printer(total: int):
    count = {"n": 0}
    total_ref = [total]

    def on_event(kind: str, info: dict) -> None:
        if kind == "stage":
            print(f"== {info['name']}", file=sys.stderr)
            if "candidates" in info:  # a new round of candidates: count afresh
                count["n"], total_ref[0] = 0, info["candidates"]
        elif kind == "cached":
            count["n"] += 1
            print(f"[{count['n']}/{total_ref[0]}] {info['model']} {info['method']}: finished earlier, reused",
                  file=sys.stderr)
        elif kind == "start":
            print(f"[{count['n'] + 1}/{total_ref[0]}] {info['model']} {info['method']}: training and evaluating",
                  file=sys.stderr)
        elif kind == "done":
            count["n"] += 1
            if info["status"] != "ok":
                print(f"    failed: {info['error']}", file=sys.stderr)

    return on_event


def select_config_from_args(args):
    """A SelectConfig from --config YAML (validated, unknown keys refused) or from flags."""
    from damoc.layers import PruneConfig
    from damoc.selection.baseline import Candidate
    from damoc.selection.pipeline import FilterSettings, SelectConfig
    from damoc.tokens import CompressConfig

    if args.config is not None:
        from damoc.runfile import read_run_file

        if args.models or args.task or args.data:
            raise DamocError("give either --config RUN.yaml or --models/--task flags, not both")
        raw = read_run_file(args.config)
        if not isinstance(raw, dict):
            raise DamocError(f"{args.config}: the run file must be a mapping of settings")
        if args.halving:
            raw["halving"] = True
        return SelectConfig(**raw)
    if not args.models:
        raise DamocError("give --models SPEC ... (and --task or --data), or --config RUN.yaml")
    name, data = _task_source(args)
    return SelectConfig(
        task=name, data=data,
        candidates=[Candidate(model=m, method=meth, base=args.base) for m in args.models for meth in args.methods],
        finetune=_finetune_config(args, "lora"), train_limit=args.train_limit, test_limit=args.test_limit,
        eval_batch_size=args.eval_batch_size, max_new_tokens=args.max_new_tokens,
        generation=not args.no_generation, seed=args.seed, allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code, dtype=args.dtype,
        quantization=args.quantization,
        filter=None if args.no_filter else FilterSettings(method=args.selector, rate=None if args.budget else args.rate,
                                                          budget=args.budget),
        compress=None if args.no_compress else CompressConfig(
            ratio=args.ratio, threshold=args.bertscore, rewriter=None if args.no_rewrite else args.rewriter,
            max_tries=0 if args.no_rewrite or not args.rewriter else args.max_tries, seed=args.seed),
        prune=None if args.no_prune else PruneConfig(threshold=args.layer_threshold, max_fraction=args.max_fraction,
                                                     merge=args.merge, seed=args.seed),
        halving=args.halving,
    )


def launch_settings_from_args(args):
    from damoc.selection.launch import LaunchSettings

    return LaunchSettings(launcher=args.launcher, address=args.ray_address,
                          cpus_per_candidate=args.cpus_per_candidate, gpus_per_candidate=args.gpus_per_candidate)


def cmd_select(args) -> None:
    from damoc.selection.pipeline import run_select

    config = select_config_from_args(args)
    try:
        summary = run_select(config, args.out, progress=True, validate=args.validate,
                             on_event=_progress_printer(len(config.candidates)),
                             launch_settings=launch_settings_from_args(args))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished stages are kept in {args.out}; run the same command again to resume",
              file=sys.stderr)
        raise SystemExit(130) from None
    print_ranking(summary)
    for r in (summary.get("halving") or {}).get("rounds", []):
        print(f"halving round {r['round']}: {len(r['ranking'])} candidates on {r['examples']} examples, "
              f"kept {', '.join(r['kept'])}")
    verdict = summary.get("verdict")
    if verdict and verdict["tied"]:
        print(f"tied: {', '.join(verdict['tie_set'])} (cannot be told apart at this budget); "
              f"recommended: {verdict['recommended']} (the cheapest of them to fine-tune)")
    elif verdict:
        print(f"recommended: {verdict['recommended']} (ahead of the others by more than two paired standard errors)")
    conf = summary.get("confidence")
    if conf:
        print("probability of ranking first (paired bootstrap): "
              + ", ".join(f"{n} {p:.2f}" for n, p in sorted(conf["prob_best"].items(), key=lambda x: -x[1])))
    if summary.get("validation_skipped"):
        print(f"\nvalidation skipped: {summary['validation_skipped']}")
    if summary.get("validation"):
        v = summary["validation"]
        r = v["by_rank"]
        print(f"\nvalidation against full fine-tuning: chosen {r['chosen']}, truly best {r['best']}, "
              f"top-1 match {r['top1_match']}, Kendall tau {r['kendall_tau']:.2f}, "
              f"Spearman rho {r['spearman_rho']:.2f}, regret {v['regret']:.4f}; speed-up "
              f"{v['speedup_wall']:.1f}x wall time, {v['speedup_flops']:.1f}x FLOPs (overheads counted)")
        j = v.get("judged")
        if j:
            print(f"full fine-tuning's tie set: {', '.join(j['truth_tie_set'])}; the pick is in it: {j['in_tie_set']}; "
                  f"regret {j['regret']:.4f} ± {j['regret_se']:.4f}")
    print(f"\nresults: {Path(args.out) / 'results.json'}\nreport:  {Path(args.out) / 'report.html'}")
    _fail_if_none_ranked(summary, args.out)


def _fail_if_none_ranked(summary: dict, out: Path) -> None:
    if not any(c["status"] == "ok" for c in summary["candidates"]):
        raise AllCandidatesFailed(f"every candidate failed (errors above and in {Path(out) / 'results.json'}); "
                                  "nothing was ranked")


def cmd_recover(args) -> None:
    from damoc.recovery.run import RecoverConfig, run_recover

    clusters = args.clusters if args.clusters == "auto" else _int_arg("--clusters", args.clusters)
    config = RecoverConfig(original=args.original, pruned=args.pruned, pool=args.data, budget=args.budget,
                           method=args.method, clusters=clusters, per_source=args.per_source,
                           max_len=args.max_seq_len, batch_size=args.jsd_batch_size, seed=args.seed,
                           heldout=args.heldout, train=args.train, eval_tasks=args.eval, eval_limit=args.eval_limit,
                           eval_max_len=args.eval_max_len, finetune=_finetune_config(args, "lora"))
    summary = run_recover(config, args.out, progress=True)
    print(f"{summary['method']}: {summary['selected']} of {summary['pool_size']} samples selected "
          f"in {summary['select_seconds']:.1f} s")
    if "clusters" in summary:
        print(f"{summary['clusters']} clusters; budget per cluster {summary['cluster_budget']}; "
              f"{summary['rejected_by_concept_graph']} samples rejected by the concept graph")
    rec = summary.get("recovery")
    if rec:
        for name in ("original", "pruned", "recovered"):
            print(f"{name:>9}: held-out perplexity {rec[name]['ppl']:.2f}, mean zero-shot accuracy "
                  f"{100 * rec[name]['avg_accuracy']:.1f}% over {', '.join(rec[name]['accuracy'])}")
    print(f"subset: {Path(args.out) / 'subset.jsonl'}\nreport: {Path(args.out) / 'report.html'}")


def _int_arg(flag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DamocError(f"{flag} must be 'auto' or a whole number, got {value!r}") from None


DEMO_MODELS = ["bundled:smollm2-135m-instruct", "bundled:gemma3-270m"]
DEMO_TASK = "nq-open"


def cmd_demo(args) -> None:
    """`damoc select --validate` on NQ-open with the four bundled candidates, sized for a CPU.

    NQ-open is chosen because its verdict can be checked: short questions and answers make full
    fine-tuning cheap enough to run here, and answer bits per byte (its metric) separates the
    candidates with a few hundred questions, where a yes/no task's accuracy would tie them."""
    argv = ["select", "--models", *DEMO_MODELS, "--methods", "lora", "full", "--task", DEMO_TASK, "--validate",
            "--train-limit", str(args.train_limit), "--test-limit", str(args.test_limit),
            "--max-seq-len", "96", "--no-generation", "--out", str(args.out)]
    if args.launcher != "local":
        argv += ["--launcher", args.launcher]
    print("damoc " + " ".join(argv), file=sys.stderr)
    select = build_parser().parse_args(argv)
    select.func(select)


def cmd_filter(args) -> None:
    from damoc.filtering import filter_examples
    from damoc.filtering.run import write_selection
    from damoc.tasks import load_task

    check_output_file(args.out, args.overwrite, (".summary.json",))
    name, data = _task_source(args)
    task = load_task(name, data)
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise DamocError(f"--option {item!r}: write it as KEY=VALUE, e.g. lam=0.3")
        options[key.strip()] = _number_or_text(value.strip())
    if args.embedder and args.method in ("graphcut", "facility-location", "hybrid"):
        options["embedder"] = args.embedder
    if args.scorer and args.method in ("perplexity", "ifd", "hybrid"):
        options["scorer"] = args.scorer
    kept, summary = filter_examples(task.train, args.method, rate=args.rate, budget=args.budget,
                                    seed=args.seed, **options)
    summary["task"] = task.name
    write_selection(kept, summary, args.out)
    print(json.dumps(summary, indent=2))
    print(f"kept {len(kept)} of {len(task.train)} training examples -> {args.out}", file=sys.stderr)


def cmd_compress(args) -> None:
    from dataclasses import asdict

    from damoc.filtering.run import read_selection
    from damoc.io import write_json_atomic, write_jsonl_atomic
    from damoc.tasks import load_task
    from damoc.tokens import CompressConfig, compress_examples

    config = CompressConfig(ratio=args.ratio, threshold=args.bertscore, scorer=args.scorer,
                            rewriter=None if args.no_rewrite else args.rewriter, bert_model=args.bert_model,
                            count_tokenizer=args.tokenizer, max_tries=args.max_tries, window=args.window,
                            batch_size=args.batch_size, seed=args.seed)
    check_output_file(args.out, args.overwrite, (".records.jsonl", ".summary.json"))
    if args.examples is not None:
        if args.task or args.data:
            raise DamocError("give either --examples (a `damoc filter` output) or --task/--data, not both")
        try:
            examples = read_selection(args.examples)
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
            raise DamocError(f"{args.examples}: not a damoc examples file ({e})") from e
        source = str(args.examples)
    else:
        name, data = _task_source(args)
        task = load_task(name, data)
        examples, source = task.train, task.name
    if args.limit:
        examples = examples[: args.limit]
    out, records, summary = compress_examples(examples, config, progress=not args.quiet)
    summary["source"] = source
    write_jsonl_atomic(args.out, (asdict(e) for e in out))
    write_jsonl_atomic(args.out.with_suffix(".records.jsonl"), records)
    write_json_atomic(args.out.with_suffix(".summary.json"), summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    print(f"compressed {summary['compressed_examples']} contexts to {summary['context_token_ratio']:.2f} "
          f"of their tokens -> {args.out}", file=sys.stderr)


def cmd_prune(args) -> None:
    from damoc.layers import PruneConfig, prune_model, save_pruned
    from damoc.layers.calibration import calibration_texts
    from damoc.models import load_model, load_tokenizer

    config = PruneConfig(threshold=args.threshold, max_fraction=args.max_fraction, merge=args.merge,
                         density=args.density, sparsification=args.sparsification, scale=args.scale,
                         iterative=args.iterative, max_len=args.max_len, seed=args.seed)
    check_output_folder(args.out, args.overwrite)
    if config.merge == "sparse" and not args.base:
        raise DamocError("--merge sparse needs --base: the pre-trained weights of the same architecture "
                         "(or use --merge difference, which needs none)")
    examples = None
    if args.calibration is None:
        name, data = _task_source(args)
        from damoc.tasks import load_task

        examples = load_task(name, data).train
    texts = calibration_texts(args.calibration, examples, args.calibration_samples, args.seed)
    options = _load_options(args)
    tokenizer = load_tokenizer(args.model, options)
    model = load_model(args.model, options).eval()
    base = load_model(args.base, options).eval() if args.base and config.merge == "sparse" else None
    result = prune_model(model, tokenizer, texts, config, base_model=base, progress=True)
    rows = [{"layer": i, "similarity": f"{s:.4f}",
             "action": (f"removed, merged into {result.merged_into[i]}" if config.merge != "none" else "removed")
             if i in result.removed else ""} for i, s in enumerate(result.similarity)]
    _table(["layer", "similarity", "action"], rows)
    if not result.removed:
        print(f"no inner layer reaches similarity {config.threshold}: nothing removed", file=sys.stderr)
    info = {"model": args.model, "base": args.base, "config": config.model_dump(),
            "calibration": str(args.calibration or (args.task or args.data)), "calibration_texts": len(texts)}
    save_pruned(model, tokenizer, args.out, result, info, overwrite=args.overwrite)
    print(f"removed {len(result.removed)} of {result.layers_before} layers "
          f"(similarity >= {config.threshold}, at most {config.max_fraction:.0%}) -> {args.out}", file=sys.stderr)


def _number_or_text(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def print_ranking(summary: dict) -> None:
    rows = []
    for c in summary["candidates"]:
        m = c.get("metrics", {})
        rows.append({
            "rank": c.get("rank", "-"), "model": c["model"], "method": c["method"],
            "accuracy": _pm(m, "accuracy", pct=True), "answer_bpb": _pm(m, "answer_bpb"),
            "rougeL": _pm(m, "rougeL") if "rougeL" in m else "",
            "train_s": f"{c['train_seconds']:.0f}" if "train_seconds" in c else "",
            "eval_s": f"{c['eval_seconds']:.0f}" if "eval_seconds" in c else "",
            "status": c["status"] if c["status"] == "ok" else f"failed: {c.get('error', '')}"[:60],
        })
    cols = ["rank", "model", "method", "accuracy", "answer_bpb", "rougeL", "train_s", "eval_s", "status"]
    if "accuracy" not in summary["primary_metric"]:
        cols.remove("accuracy")
    if not any(r["rougeL"] for r in rows):
        cols.remove("rougeL")
    data = summary.get("data") or {}
    train = (f"{data['input_examples']} -> {summary['train_examples']} (filtered and compressed)"
             if "input_examples" in data else str(summary["train_examples"]))
    ties = " (ties: answer_bpb)" if summary["primary_metric"] != "answer_bpb" else " (lower is better)"
    print(f"\n{summary['task']}: {train} training / {summary['test_examples']} "
          f"test examples, ranked by {summary['primary_metric']}{ties}")
    if "majority_accuracy" in summary:
        print(f"always answering the most common test answer would score "
              f"{100 * summary['majority_accuracy']:.1f}%")
    _table(cols, rows)


def _pm(m: dict, key: str, pct: bool = False) -> str:
    if key not in m:
        return ""
    v, se = m[key], m.get(f"{key}_se", float("nan"))
    return f"{100 * v:.1f} ± {100 * se:.1f}" if pct else f"{v:.3f} ± {se:.3f}"


def _table(columns: list[str], rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for r in rows:
        table.add_row(*[str(r.get(c, "")) for c in columns])
    # Piped output has no terminal width: do not squeeze the table into 80 columns.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    MERGES = LazyChoices("damoc.layers.merge:MERGES")
    METHODS = LazyChoices("damoc.finetune.train:Method")
    RECOVERY_METHODS = LazyChoices("damoc.recovery.paser:METHODS")
    LAUNCHERS = LazyChoices("damoc.selection.launch:LAUNCHERS")
    parser = argparse.ArgumentParser(
        prog="damoc",
        description="Choose which LLM (and fine-tuning method) to fine-tune for a domain task. "
                    "Models are bundled:NAME, a local Hugging Face folder, or a hub id.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="bundled and cached models").add_subparsers(
        dest="sub", required=True)
    p = models.add_parser("list", help="show bundled models and what is prepared in the cache")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("prepare", help="convert a bundled model once (GGUF to safetensors); print its folder")
    p.add_argument("spec", help="e.g. bundled:smollm2-135m-instruct")
    p.add_argument("--force", action="store_true", help="convert again even if cached")
    p.set_defaults(func=cmd_models_prepare)

    tasks = sub.add_parser("tasks", help="bundled tasks").add_subparsers(dest="sub", required=True)
    p = tasks.add_parser("list", help="bundled tasks with their sizes and metric")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks_list)
    p = tasks.add_parser("show", help="a task's size, split, answer counts and an example prompt")
    p.add_argument("name", nargs="?", help="bundled task name")
    _add_task_args(p)
    p.add_argument("--train-limit", type=int, help="show what a run with this seeded training sample would use")
    p.add_argument("--test-limit", type=int, help="show what a run on the first N test examples would use")
    p.add_argument("--seed", type=int, default=0, help="the seed of the training sample (as in a run)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks_show)

    p = sub.add_parser("evaluate", help="evaluate a model on a task's test split (no training)")
    p.add_argument("--model", required=True)
    _add_task_args(p)
    _add_load_args(p)
    _add_train_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("finetune", help="fine-tune one model on a task, then evaluate it")
    p.add_argument("--model", required=True)
    p.add_argument("--method", choices=METHODS, default="lora", metavar="METHOD", help="%(choices)s")
    p.add_argument("--out", type=Path, help="save the fine-tuned model (safetensors) and stats in this new folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if damoc made it earlier (never a file or folder damoc did not write)")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation on the test split")
    _add_task_args(p)
    _add_load_args(p)
    _add_train_args(p)
    p.set_defaults(func=cmd_finetune)

    from damoc.filtering import SELECTORS

    p = sub.add_parser("filter", help="keep a representative or high-quality share of a task's training data",
                       description="Selectors: " + "; ".join(f"{n}: {SELECTORS.info(n)['description']}"
                                                            for n in SELECTORS),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=SELECTORS.names(), default="graphcut")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--rate", type=float, help="share of the training split to keep, in (0, 1]")
    size.add_argument("--budget", type=int, help="number of examples to keep")
    p.add_argument("--out", type=Path, required=True, help="selected examples (.jsonl); a .summary.json goes beside")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if damoc made it earlier (never a file or folder damoc did not write)")
    p.add_argument("--embedder", help="sentence-transformers model (default: bundled MiniLM)")
    p.add_argument("--scorer", help="causal LM for perplexity / IFD (default: bundled:smollm2-135m-instruct)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="selector parameter, e.g. lam=0.3 (GraphCut) or pool_factor=3 (hybrid)")
    p.add_argument("--seed", type=int, default=0)
    _add_task_args(p)
    p.set_defaults(func=cmd_filter)

    p = sub.add_parser(
        "compress", help="drop low-information words from training contexts, keeping their meaning",
        description="Scores every token of each example's context by its surprisal under a small causal LM, "
                    "keeps the most informative words up to --ratio of the tokens, and checks meaning with "
                    "BERTScore rescaled by a baseline measured on the data (0 = as similar as an unrelated "
                    "context, 1 = identical). Contexts below --bertscore are rewritten by an instruct LLM "
                    "(with --rewriter), then compressed more mildly, then left whole: none is emitted below the "
                    "threshold. "
                    "Questions, options and answers are never touched. Writes OUT, OUT.records.jsonl "
                    "(per example) and OUT.summary.json.")
    p.add_argument("--ratio", type=float, default=0.5, help="share of context tokens to keep, in (0, 1] (default 0.5)")
    p.add_argument("--bertscore", type=float, default=0.7,
                   help="minimum rescaled BERTScore F1 of an emitted context, in [0, 1] (default 0.7: 97%% of "
                        "PubMedQA contexts pass at ratio 0.5; at 0.9 none do)")
    p.add_argument("--scorer", default="bundled:smollm2-135m-instruct", help="causal LM for token surprisal")
    p.add_argument("--rewriter", help="instruct LM that rewrites failing contexts, e.g. bundled:smollm2-135m-instruct "
                                      "(default: none; failing contexts fall back to milder ratios. The bundled "
                                      "135M model rescued none of 100 PubMedQA contexts on a CPU)")
    p.add_argument("--no-rewrite", action="store_true", help="skip rewriting even with --rewriter")
    p.add_argument("--max-tries", type=int, default=2, help="rewrites per failing sample (default 2)")
    p.add_argument("--bert-model", default="bundled:minilm", help="BERTScore encoder (default: bundled MiniLM)")
    p.add_argument("--tokenizer", help="tokenizer the ratio is reported in, e.g. the model you will train "
                                       "(default: the scorer's)")
    p.add_argument("--window", type=int, default=512, help="scorer window; longer texts are scored in windows")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--examples", type=Path, help="compress a `damoc filter` output instead of a task's training split")
    p.add_argument("--limit", type=int, help="only the first N examples")
    p.add_argument("--out", type=Path, required=True, help="compressed examples (.jsonl)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if damoc made it earlier (never a file or folder damoc did not write)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_task_args(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser(
        "prune", help="remove the decoder layers that change their input least; save a loadable model",
        description="Measures each decoder layer's mean cosine similarity between its input and output hidden "
                    "states on calibration text, removes the most similar layers (at or above --threshold, at "
                    "most --max-fraction of them, never the first or last), folds them into their nearest "
                    "retained layer (--merge) and saves a normal safetensors model folder with "
                    "damoc-prune.json and similarity.png. Merges: none (drop); difference (LaCo: add the layer "
                    "difference, needs no other model); sparse (DaMoC: add the removed layer's sparsified task "
                    "vector against --base, the pre-trained weights).")
    p.add_argument("--model", required=True, help="the model to prune (bundled:NAME, folder or hub id)")
    p.add_argument("--base", help="pre-trained weights of the same architecture (for --merge sparse)")
    p.add_argument("--calibration", help="bundled task name or a file (.txt: one text per line; "
                                         ".jsonl/.json/.csv/.parquet: text-like fields); default: --task/--data")
    p.add_argument("--calibration-samples", type=int, default=64, help="texts to use (default 64)")
    p.add_argument("--threshold", type=float, default=0.85, help="cosine similarity in [-1, 1] (default 0.85)")
    p.add_argument("--max-fraction", type=float, default=0.25, help="most layers to remove, as a share (default 0.25)")
    p.add_argument("--merge", choices=MERGES, default="none", metavar="MERGE", help="%(choices)s")
    p.add_argument("--density", type=float, default=0.3, help="sparse merge: share of task-vector entries kept")
    p.add_argument("--sparsification", choices=["magnitude", "random"], default="magnitude",
                   help="sparse merge: keep the largest entries (TIES) or a random share rescaled (DARE)")
    p.add_argument("--scale", type=float, default=1.0, help="weight of merged differences (default 1)")
    p.add_argument("--iterative", action="store_true", help="recompute similarity after each removal")
    p.add_argument("--max-len", type=int, default=256, help="calibration tokens per text")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output model folder (must not exist, see --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if damoc made it earlier (never a file or folder damoc did not write)")
    _add_task_args(p)
    _add_load_args(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser(
        "select", help="DaMoC: rank candidates by training compressed versions on compressed data",
        description="Filters the training data (GraphCut 10%), compresses its contexts (ratio 0.5, rescaled "
                    "BERTScore >= 0.7, no LLM rewriting unless --rewriter), prunes each candidate's most redundant "
                    "layers (similarity >= 0.85, at most 25%), trains each for one epoch (at least 25 optimizer "
                    "steps: with few examples the batch shrinks) and evaluates it on the full test split. When "
                    "the leaders cannot be told apart it says so and recommends the cheapest of them. Every stage "
                    "is cached in --out: re-running resumes. --validate also runs full fine-tuning and "
                    "reports how well the rankings agree and the time saved. Settings come from flags or from "
                    "--config RUN.yaml (the fields of damoc.selection.pipeline.SelectConfig).")
    p.add_argument("--config", type=Path, help="YAML run file (instead of the model and task flags)")
    p.add_argument("--models", nargs="+", metavar="SPEC")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=["lora"], metavar="METHOD", help="%(choices)s")
    p.add_argument("--base", help="pre-trained weights for the sparse layer merge (one model family)")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--validate", action="store_true", help="also fine-tune every candidate on the full data "
                                                          "and compare the rankings")
    g = p.add_argument_group("compression")
    g.add_argument("--selector", default="graphcut", help="data selector (see `damoc filter --help`)")
    g.add_argument("--rate", type=float, default=0.1, help="share of the training data kept (default 0.1)")
    g.add_argument("--budget", type=int, help="or a count of training examples kept")
    g.add_argument("--no-filter", action="store_true")
    g.add_argument("--ratio", type=float, default=0.5, help="token ratio of compressed contexts (default 0.5)")
    g.add_argument("--bertscore", type=float, default=0.7, help="rescaled BERTScore threshold (default 0.7)")
    g.add_argument("--rewriter", help="instruct LM that rewrites failing contexts (default: none, they fall back "
                                      "to milder ratios; worth it with a capable model on a GPU)")
    g.add_argument("--max-tries", type=int, default=2, help="rewrites per failing context (default 2)")
    g.add_argument("--no-rewrite", action="store_true", help="no LLM rewriting even with --rewriter")
    g.add_argument("--no-compress", action="store_true")
    g.add_argument("--layer-threshold", type=float, default=0.85, help="layer similarity threshold (default 0.85)")
    g.add_argument("--max-fraction", type=float, default=0.25, help="most layers removed (default 0.25)")
    g.add_argument("--merge", choices=MERGES, default="none", metavar="MERGE", help="%(choices)s")
    g.add_argument("--no-prune", action="store_true")
    g.add_argument("--halving", action="store_true",
                   help="successive halving: all candidates on 1/n of the compressed data, the better half on "
                        "twice as much, until one is left (cheaper; measured in bench/select_validate.py)")
    g = p.add_argument_group("where candidates run")
    g.add_argument("--launcher", choices=LAUNCHERS, default="local", metavar="LAUNCHER",
                   help="local: one after another here (default); ray: each candidate a Ray task (pip install "
                        "'damoc[ray]'), in parallel across the cluster's resources; the run folder is the same")
    g.add_argument("--ray-address", help="join this Ray cluster ('auto': the running one); default: start one here")
    g.add_argument("--cpus-per-candidate", type=float, default=1.0, help="Ray resources per candidate (default 1)")
    g.add_argument("--gpus-per-candidate", type=float, help="Ray GPUs per candidate (default 1 with CUDA, else 0)")
    _add_task_args(p)
    _add_load_args(p)
    _add_train_args(p)
    p.set_defaults(func=cmd_select)

    p = sub.add_parser(
        "recover", help="PASER: choose the instruction data that best recovers a pruned model",
        description="Clusters the pool's instructions (sentence embeddings, diffusion kernel on a sparse "
                    "nearest-neighbour graph, NMF), measures each sample's degradation as the JSD between the "
                    "original and pruned models' next-token distributions, shares the budget among clusters "
                    "by degradation, and picks samples by JSD / log(tokens) while keeping the concept graph "
                    "consistent. Writes OUT/subset.jsonl, OUT/summary.json, OUT/report.md and OUT/report.html.")
    p.add_argument("--original", required=True, metavar="SPEC", help="the model before pruning")
    p.add_argument("--pruned", required=True, metavar="SPEC_OR_DIR", help="the pruned model (e.g. from damoc prune)")
    p.add_argument("--data", default="bundled:mix",
                   help="instruction pool: bundled:mix (7 sources from the bundled data) or an Alpaca JSONL/JSON")
    p.add_argument("--budget", type=float, default=0.2, help="a share in (0, 1) of the pool or a count (default 0.2)")
    p.add_argument("--clusters", default="auto", help="auto (from the NMF reconstruction error) or K")
    p.add_argument("--method", default="paser", choices=RECOVERY_METHODS, metavar="METHOD", help="%(choices)s")
    p.add_argument("--per-source", type=int, default=500, help="samples per source in bundled:mix (default 500)")
    p.add_argument("--jsd-batch-size", type=int, default=4, help="samples per JSD forward pass (default 4)")
    p.add_argument("--heldout", type=int, default=100,
                   help="pool samples set aside for held-out perplexity, never selected (default 100)")
    p.add_argument("--train", action="store_true", help="recover the pruned model with LoRA on the subset and "
                                                        "compare it with the pruned and the original model")
    p.add_argument("--eval", nargs="+", default=["boolq", "pubmedqa", "medqa"], metavar="TASK",
                   help="bundled choice tasks for zero-shot accuracy (default boolq pubmedqa medqa)")
    p.add_argument("--eval-limit", type=int, default=100, help="test questions per task (default 100)")
    p.add_argument("--eval-max-len", type=int, default=1024,
                   help="token limit of a test question with its answer (default 1024; --max-seq-len bounds "
                        "training only)")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    _add_optim_args(p.add_argument_group("recovery training (with --train; --max-seq-len also bounds the JSD)"))
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser(
        "demo", help="select --validate on NQ-open with the 4 bundled candidates (about 15 minutes on 2 CPU cores)",
        description="Runs `damoc select --validate` on the bundled NQ-open task (short open-domain questions, "
                    "ranked by answer bits per byte) with {smollm2-135m-instruct, gemma3-270m} x {lora, full}: the "
                    "compressed ranking with its tie set and recommendation, full fine-tuning of every candidate "
                    "on the sampled training questions, and how well the two agree (is the pick in full "
                    "fine-tuning's tie set?). Prints the command it runs; re-running resumes.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    p.add_argument("--train-limit", type=int, default=400, help="training questions for full fine-tuning (default 400)")
    p.add_argument("--test-limit", type=int, default=300, help="test questions (default 300)")
    p.add_argument("--launcher", choices=LAUNCHERS, default="local", metavar="LAUNCHER", help="%(choices)s")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("baseline", help="fine-tune every candidate on the full data, evaluate, rank "
                                        "(the ground truth; resumes when re-run)")
    p.add_argument("--models", nargs="+", required=True, metavar="SPEC")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=["lora"], metavar="METHOD", help="%(choices)s")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    _add_task_args(p)
    _add_load_args(p)
    _add_train_args(p)
    p.set_defaults(func=cmd_baseline)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DamocError as e:
        print(f"damoc: error: {e}", file=sys.stderr)
        return e.exit_code
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'input'}: {err['msg']}" for err in e.errors())
        print(f"damoc: error: {msgs}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a read-only folder: one line naming the path, not a traceback
        if e.errno not in _WRITE_ERRNOS:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"damoc: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
