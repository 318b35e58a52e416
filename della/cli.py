"""`della-bench <command>`: the console entry point every Snakemake rule calls.

Each command takes `--settings` as JSON: the rule passes exactly its own config section(s), so a
changed setting reruns just the rules that use it. Every step can run (and be tested) without
Snakemake. train, generate and evaluate take `--nproc N`: N > 1 runs N data-parallel ranks on this
node under torchrun (della/run/distributed.py, docs/distributed.md); N <= 1 runs in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

# Quiet the libraries' own progress bars and advice; our loops log their own progress.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _json(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"--settings is not valid JSON: {error}") from error


def cmd_train_tokenizer(args) -> None:
    from della.run.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(args.inputs, args.settings["vocab_size"], args.settings["min_frequency"], args.out)
    print(f"tokenizer with {len(tokenizer)} entries -> {args.out}")


def cmd_create_backbone(args) -> None:
    from della.models.backbone import backbone_spec, create_backbone

    s = args.settings
    size = backbone_spec(s["create"])
    if isinstance(size, str):  # a published architecture: its own tokenizer, not --tokenizer's
        from della.run.tokenizer import published_tokenizer_description

        create_backbone(s["kind"], size, None, args.out, s["seed"])
        print(f"random-init {size} ({s['kind']}) backbone, seed {s['seed']} -> {args.out}")
        print(f"tokenizer: {published_tokenizer_description(size)} (--tokenizer {args.tokenizer} not used)")
        return
    create_backbone(s["kind"], size, args.tokenizer, args.out, s["seed"])
    print(f"random-init {s['kind']} backbone -> {args.out}")
    print(f"tokenizer: {args.tokenizer}")


def cmd_count_lengths(args) -> None:
    from della.io import atomic_write_json
    from della.models.backbone import load_tokenizer
    from della.run.batches import load_records, target_of
    from della.run.lengths import count_cut

    s = args.settings
    splits = {}
    for split in ("train", "valid", "test"):
        records = load_records(args.data / f"{split}.jsonl")
        sources = [r["source"] for r in records] if records and "source" in records[0] else None
        splits[split] = (sources, [target_of(r) for r in records])
    document = count_cut(
        splits, load_tokenizer(s["tokenizer"]), s["tokenizer"], s["max_source_tokens"], s["max_target_tokens"]
    )
    atomic_write_json(args.out, document)
    print(
        " ".join(
            f"{split}: {e['examples']} examples, {e.get('sources_cut', 0)} sources and {e['targets_cut']} targets cut;"
            for split, e in document["splits"].items()
        )
        + f" -> {args.out}"
    )


def cmd_train(args) -> None:
    from della.models.vae import VAEConfig
    from della.run.train import EX_TEMPFAIL, Interrupted, TrainSettings, train

    settings = args.settings
    try:
        final = train(
            VAEConfig.from_settings(settings),
            TrainSettings(**settings["training"]),
            args.data / "train.jsonl",
            args.run,
            args.seed,
        )
    except Interrupted as stop:
        # Preempted or out of walltime, checkpoint saved: a status that asks for a retry, which resumes.
        print(f"della-bench train: {stop}", file=sys.stderr)
        sys.exit(EX_TEMPFAIL)
    _report(f"trained -> {final}")


def _report(line: str) -> None:
    """A command's last line, printed once (by rank 0 of a data-parallel run)."""
    from della.run.distributed import world

    if world().main:
        print(line)


def cmd_count_parameters(args) -> None:
    from della.models.vae import TransformerVAE, VAEConfig, count_parameters

    config = VAEConfig.from_settings(args.settings).with_training(args.settings.get("training", {}))
    counts = count_parameters(TransformerVAE(config))
    for name, count in counts.items():
        print(f"{name:12s} {count:,}")


def cmd_generate(args) -> None:
    from della.run.generate import run

    run(args.run / "model", args.data / "test.jsonl", args.settings, args.seed, args.out)
    _report(f"samples -> {args.out}")


def cmd_evaluate(args) -> None:
    from della.run.evaluate import run

    # the training split is what the latent probe is fitted on (metrics/probe.py)
    run(
        args.run / "model",
        args.data / "test.jsonl",
        args.samples,
        args.settings,
        args.seed,
        args.out,
        train_file=args.data / "train.jsonl",
    )
    _report(f"metrics -> {args.out}")


# Commands whose module parses its own arguments (`della-bench preprocess --help`).
DELEGATED = {
    "download": ("della.data.download", "fetch (or verify) a dataset's raw files from its config sources"),
    "preprocess": ("della.data.preprocess", "raw dataset -> processed splits and stats"),
    "render-table": (
        "della.report.tables",
        "metrics.csv (Table 3: the filled forms) -> results tables (Markdown, CSV, LaTeX)",
    ),
    "tidy": ("della.report.tidy", "every run's metrics, timings and the data statistics -> one long metrics.csv"),
    "human-eval-export": ("della.report.human_eval", "runs' samples -> blinded human-evaluation forms and their key"),
    "figure": ("della.report.figures", "metrics.csv, samples, models and logs -> Fig. 2-4 and training curves"),
    "findings": ("della.report.findings", "metrics.csv -> which of the paper's claims hold (FINDINGS.md)"),
    "prefetch": (
        "della.pipeline.prefetch",
        "fetch one pinned hub model into the model cache (della/pipeline/prefetch.py)",
    ),
    "gpu-memory": (
        "della.cluster.cluster_table",
        "a config's runs -> estimated peak GPU memory and disk (docs/cluster.md)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="della-bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_text, **paths):
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(func=func)
        for flag, kind in paths.items():
            sub.add_argument(f"--{flag}", type=kind, required=True)
        return sub

    sub = command(
        "train-tokenizer", cmd_train_tokenizer, "train the sample-scale BPE tokenizer", out=Path, settings=_json
    )
    sub.add_argument("--inputs", type=Path, nargs="+", required=True)
    command(
        "count-lengths",
        cmd_count_lengths,
        "count the texts of a dataset's splits longer than its token limits",
        data=Path,
        out=Path,
        settings=_json,
    )
    command(
        "create-backbone",
        cmd_create_backbone,
        "write a small random-init backbone",
        tokenizer=Path,
        out=Path,
        settings=_json,
    )
    for sub in (
        command("train", cmd_train, "train one (dataset, model, seed)", data=Path, run=Path, settings=_json, seed=int),
        command("generate", cmd_generate, "generate samples", data=Path, run=Path, out=Path, settings=_json, seed=int),
        command(
            "evaluate",
            cmd_evaluate,
            "compute every metric",
            data=Path,
            run=Path,
            samples=Path,
            out=Path,
            settings=_json,
            seed=int,
        ),
    ):
        sub.add_argument(
            "--threads",
            type=int,
            default=None,
            help="CPU threads for torch (default: torch's); shared among the ranks of --nproc",
        )
        sub.add_argument(
            "--nproc",
            type=int,
            default=1,
            help="data-parallel ranks on this node (the job's GPUs); > 1 launches them with torchrun",
        )
        sub.add_argument(
            "--tf32",
            choices=("on", "off"),
            default="on",
            help="TF32 float32 matmuls on Ampere and newer cards (della/run/numerics.py; config `tf32`)",
        )
    command(
        "count-parameters",
        cmd_count_parameters,
        "print the parameter count of a model configuration (the train rule's --settings)",
        settings=_json,
    )
    for name, (_, help_text) in DELEGATED.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


# The native thread pools besides torch's: OpenMP (torch's CPU kernels, faiss), OpenBLAS / MKL
# (numpy, scipy, scikit-learn) and Rayon (tokenizers). Each sizes itself to every core of the
# machine unless told, which `--threads` must override: two one-thread jobs on two cores whose
# scikit-learn probe spins two OpenBLAS threads each cost 20-30 % more CPU time (measured on the
# sample scale's evaluate, results/benchmarks.md).
THREAD_POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


def limit_thread_pools(threads: int) -> None:
    """Size every native thread pool to `threads`. Read when each library loads, so this runs
    before the command imports torch or numpy (della.cli imports neither at module level); in a
    warm-start worker (della/pipeline/warm.py) they are loaded already and are resized in place."""
    for variable in THREAD_POOL_VARIABLES:
        os.environ[variable] = str(threads)
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)


@contextmanager
def stage_attempt(args, world):
    """generate / evaluate as recorded attempts of their stage (della/cluster/attempts.py; training records
    its own, with its steps), SIGTERM (a time limit, preemption, scancel) ending one as a stop: the
    workflow sizes a retry by how the attempts before it ended."""
    if args.command not in ("generate", "evaluate"):
        yield
        return
    import signal
    import threading

    from della.cluster.attempts import StageInterrupted, gpu_facts, recorded_attempt, settings_digest

    def stop(signum, frame):
        raise StageInterrupted(f"{signal.Signals(signum).name} received")

    main_thread = threading.current_thread() is threading.main_thread()  # signals reach Python there only
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        facts = {"settings": settings_digest(args.settings), **gpu_facts()}
        with recorded_attempt(args.run, args.command, facts, write=world is None or world.main):
            yield
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        module = __import__(DELEGATED[argv[0]][0], fromlist=["main"])
        sys.exit(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):  # per rank: the job's threads are shared by its --nproc ranks
        limit_thread_pools(max(1, args.threads // max(1, getattr(args, "nproc", 1))))
    ranks = nullcontext()
    if hasattr(args, "nproc"):
        from della.run import distributed

        if args.nproc > 1 and not distributed.launched():
            sys.exit(distributed.launch(args.nproc, argv))  # this same command, as args.nproc ranks
        ranks = distributed.process_group()
    with ranks as world:
        if hasattr(args, "tf32"):
            from della.run.numerics import ON, set_tf32

            set_tf32(args.tf32 == ON)
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(max(1, args.threads // (world.size if world else 1)))
        from della.cluster.attempts import RepeatedOutOfMemory, StageInterrupted

        try:
            with stage_attempt(args, world):
                args.func(args)
        except StageInterrupted as stop:
            from della.run.distributed import EX_TEMPFAIL

            print(f"della-bench {args.command}: {stop}; rerun to start it again", file=sys.stderr)
            sys.exit(EX_TEMPFAIL)
        except (ValueError, KeyError, OSError, FloatingPointError, RepeatedOutOfMemory) as error:
            # A clear one-line error for the rule's log; the traceback stays available with DELLA_DEBUG=1.
            if os.environ.get("DELLA_DEBUG"):
                raise
            print(f"della-bench {args.command}: error: {type(error).__name__}: {error}", file=sys.stderr)
            sys.exit(1)
        except RuntimeError as error:
            from della.cluster.gpu_memory import out_of_memory_message

            message = out_of_memory_message(args.command, error)
            if message is None or os.environ.get("DELLA_DEBUG"):
                raise
            print(f"della-bench {args.command}: error: {message}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
