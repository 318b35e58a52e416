"""Does training in bf16 change the small scale's numbers? fp32 and bf16 side by side (issue 30).

Runs one experiment of a config (default: Table 1 of config/small.yaml on Yelp, seed 0) twice
through the real workflow, in two fresh working directories at once: once as configured
(`training.precision` of the config, fp32) and once with `training.precision: bf16`, nothing else
changed (evaluation stays fp32: `della-bench evaluate` has no precision setting). Each run gets
one core (`--cores 1` each, so both see the same load). Then, per model, it compares

- the final validation loss (train_log.jsonl, the last `valid_loss`: -ELBO at beta = 1),
- every metric the claims of config/findings.yaml compare, against that metric's minimum effect
  there: a difference smaller than the smallest effect a claim counts cannot change a verdict,
  so it is the tolerance (the validation loss gets PPL's, 1 % relative),
- and the train job's wall clock (its benchmark record), bf16 against fp32.

It prints one Markdown section (machine, versions, date, settings) for results/benchmarks.md.
From the repository root (about 45 minutes on 2 cores at the small config's full budget):

    PYTHONPATH=$PWD python benchmarks/precision_side_by_side.py --workdir /tmp/precision \\
        [--configfile config/small.yaml] [--experiment table1] [--dataset yelp]

Training generates and evaluates as the config says but for `--overlay` (default: 200
unconditional samples and a 2,000-sentence probe, to keep the check under an hour; say so when
quoting it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from della.pipeline import overlays
from della.pipeline.targets import snakemake_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import machine_header  # noqa: E402

from della.report.findings import load_findings_spec  # noqa: E402

PRECISIONS = ("fp32", "bf16")
VALID_LOSS = "valid_loss"
DEFAULT_OVERLAY = {"generation": {"num_unconditional": 200}, "evaluation": {"probe": {"max_train_examples": 2000}}}


def overlay_file(workdir: Path, precision: str, experiment: str, dataset: str, seed: int, extra: dict) -> Path:
    overlay = {**extra, "seeds": [seed], "results_dir": "results", "experiments": {experiment: {"datasets": [dataset]}}}
    overlay.setdefault("training", {})["precision"] = precision
    path = workdir / f"{precision}.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def run_targets(config_file: Path, experiment: str, dataset: str, seed: int) -> list[str]:
    """Every run's metrics.json of the experiment on one dataset (not its tables: a table may need
    datasets the check leaves out)."""
    config = overlays.load(config_file)
    return [f"runs/{dataset}/{model}/seed{seed}/metrics.json" for model in config["experiments"][experiment]["models"]]


def start(workdir: Path, config_file: Path, overlay: Path, targets: list[str]) -> subprocess.Popen:
    command = snakemake_command(workdir, [config_file, overlay], "--cores", "1", targets=targets)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = open(workdir / "snakemake.out", "w")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


def read_metrics(workdir: Path) -> dict[str, dict[str, float]]:
    """model -> metric -> value, from the run's metrics.json files."""
    found = {}
    for path in sorted(workdir.glob("runs/*/*/seed*/metrics.json")):
        document = json.loads(path.read_text())
        found[document["label"]] = {name: entry["value"] for name, entry in document["metrics"].items()}
        log = path.with_name("train_log.jsonl")
        losses = (
            [json.loads(line)[VALID_LOSS] for line in log.read_text().splitlines() if VALID_LOSS in json.loads(line)]
            if log.exists()
            else []
        )
        if losses:
            found[document["label"]][VALID_LOSS] = losses[-1]
        bench = (
            workdir
            / "results"
            / "benchmarks"
            / "train"
            / document["dataset"]
            / document["model"]
            / f"seed{document['seed']}.tsv"
        )  # the train rule's `benchmark:` (results_dir: results)
        if bench.exists():
            with open(bench, newline="") as handle:
                found[document["label"]]["train_s"] = float(next(csv.DictReader(handle, delimiter="\t"))["s"])
    return found


def tolerance(metric: str, reference: float, effects: dict) -> float | None:
    effect = effects.get("PPL" if metric == VALID_LOSS else metric)
    if effect is None:
        return None
    return max(effect.get("absolute", 0.0), effect.get("relative", 0.0) * abs(reference))


def report(results: dict[str, dict], effects: dict, args, wall: dict[str, float]) -> str:
    fp32, bf16 = results["fp32"], results["bf16"]
    lines = [
        "## Training precision: fp32 against bf16 autocast, side by side (issue 30)",
        "",
        machine_header(1),
        "",
        f"Settings: `{args.configfile}` + `--overlay {json.dumps(args.overlay)}`, experiment `{args.experiment}` "
        f"on `{args.dataset}`, seed {args.seed}, `training.precision` fp32 vs bf16 and nothing else; one core "
        f"each, both at once. Tolerance: the metric's minimum effect in config/findings.yaml (validation loss: "
        f"PPL's, 1 % relative), relative to the fp32 value. Wall clock: fp32 {wall['fp32'] / 60:.1f} min, "
        f"bf16 {wall['bf16'] / 60:.1f} min.",
        "",
        "| model | metric | fp32 | bf16 | bf16 − fp32 | tolerance | within |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    outside = 0
    compared = [VALID_LOSS, *effects]
    for model in sorted(set(fp32) & set(bf16)):
        for metric in compared:
            if metric not in fp32[model] or metric not in bf16[model]:
                continue
            a, b = fp32[model][metric], bf16[model][metric]
            allowed = tolerance(metric, a, effects)
            within = abs(b - a) < allowed
            outside += not within
            lines.append(
                f"| {model} | {metric} | {a:.4g} | {b:.4g} | {b - a:+.3g} | {allowed:.3g} | "
                f"{'yes' if within else '**no**'} |"
            )
        if "train_s" in fp32[model] and "train_s" in bf16[model]:
            lines.append(
                f"| {model} | train job (s) | {fp32[model]['train_s']:.0f} | {bf16[model]['train_s']:.0f} | "
                f"×{fp32[model]['train_s'] / bf16[model]['train_s']:.2f} faster | | |"
            )
    lines += ["", f"{outside} difference(s) outside the tolerance."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="two fresh folders are made under it")
    parser.add_argument("--configfile", type=Path, default=ROOT / "config" / "small.yaml")
    parser.add_argument("--experiment", default="table1")
    parser.add_argument("--dataset", default="yelp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overlay",
        type=json.loads,
        default=DEFAULT_OVERLAY,
        help="JSON merged into both configs (default: fewer samples, a smaller probe)",
    )
    parser.add_argument("--findings", type=Path, default=ROOT / "config" / "findings.yaml")
    parser.add_argument("--out", type=Path, help="also write the section here")
    parser.add_argument(
        "--report-only",
        type=json.loads,
        metavar='{"fp32": SECONDS, "bf16": SECONDS}',
        help="compare the runs already in --workdir (their wall clocks given) without running",
    )
    args = parser.parse_args(argv)
    effects = {}
    for claim in load_findings_spec(args.findings).claims:
        effects.update(claim["minimum_effects"])
    if args.report_only:
        section = report({p: read_metrics(args.workdir / p) for p in PRECISIONS}, effects, args, args.report_only)
        print(section)
        if args.out:
            args.out.write_text(section)
        return 0
    processes, began = {}, time.time()
    targets = run_targets(args.configfile, args.experiment, args.dataset, args.seed)
    for precision in PRECISIONS:
        workdir = args.workdir / precision
        workdir.mkdir(parents=True, exist_ok=False)
        overlay = overlay_file(args.workdir, precision, args.experiment, args.dataset, args.seed, args.overlay)
        processes[precision] = start(workdir, args.configfile, overlay, targets)
    wall = {}
    while len(wall) < len(processes):
        for precision, process in processes.items():
            if precision not in wall and process.poll() is not None:
                wall[precision] = time.time() - began
                if process.returncode:
                    print(
                        f"{precision}: snakemake exited {process.returncode}; see "
                        f"{args.workdir / precision / 'snakemake.out'}",
                        file=sys.stderr,
                    )
                    return 1
        time.sleep(5)
    section = report({p: read_metrics(args.workdir / p) for p in PRECISIONS}, effects, args, wall)
    print(section)
    if args.out:
        args.out.write_text(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
