"""The paper scale's dress rehearsal on a SLURM, with its models fetched the way a cluster fetches
them (docs/cluster.md, "Rehearsing the paper config on SLURM"):

    sudo workflow/scripts/local-slurm.sh start
    .venv/bin/python workflow/scripts/rehearse_on_slurm.py --workdir /tmp/rehearsal-slurm fig3

1. The config: config/rehearsal.yaml, an overlay on config/paper.yaml (della/pipeline/overlays.py),
   except that the backbones and feature models stay the paper's pinned hub names (`gpt2` at its
   revision, `gpt2-large`, ...), read through `model_hub_mirror` from <workdir>/hub-mirror, and
   the `cluster` / `resources` sections name the local SLURM (workflow/scripts/local-slurm.sh:
   account lab, partitions cpu and gpu, GPU type fake) and a memory its one node has. Neither
   section is a param: no number depends on them.
2. The hub, played by a folder: a dry run lists the `prefetch_model` jobs the targets need; each of
   those hub names gets a random-init model of its real architecture and size, with its tokenizer
   (della/models/architectures.py, as `create_backbone` writes them for the rehearsal), in
   <workdir>/hub-mirror/<hub name>/, where `huggingface-cli download <name> --local-dir` would put
   the real one.
3. `snakemake --profile slurm <targets>`: the local rule `prefetch_model` copies each model from the
   mirror into models/hub/<key>/ with its record (prefetched.json), and every job, through sbatch,
   reads it there with the hub offline (HF_HUB_OFFLINE=1).

Writes <workdir>/rehearsal-slurm.json: the targets, the command, its exit status and seconds, and
each prefetched model's record. Exits with Snakemake's status.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from della.pipeline import overlays
from della.pipeline.targets import snakemake_command

ROOT = Path(__file__).resolve().parents[2]
# workflow/scripts/local-slurm.sh's names; its one node has three quarters of the machine's memory
LOCAL_CLUSTER = {
    "account": "lab",
    "partition": "cpu",
    "gpu_partition": "gpu",
    "gpu_model": "fake",
    "gpu_models": None,
    "constraint": "fakegpu",
    "time_limit_warning_s": 600,
}
JOB_MEM_MB = 12000


def rehearsal_config(mirror: Path) -> dict:
    """rehearsal.yaml (an overlay on paper.yaml), the paper's pinned backbones read from `mirror`,
    the local SLURM."""
    paper = overlays.load("config/paper.yaml")
    config = overlays.load("config/rehearsal.yaml")
    # the paper's backbones and the feature models that name them, instead of the folders
    # create_backbone writes for the rehearsal
    config["backbones"] = paper["backbones"]
    for metric, key in (("mauve", "feature_model"), ("bertscore", "model")):
        config["evaluation"][metric][key] = paper["evaluation"][metric][key]
    config["model_hub_mirror"] = str(mirror)
    # the schema's default, which Snakemake fills in when it validates the config
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    config.setdefault("model_cache", schema["properties"]["model_cache"]["default"])
    config["cluster"] = dict(LOCAL_CLUSTER)
    node_mb = int(re.search(r"RealMemory=(\d+)", slurm_node()).group(1))
    config["resources"].update(mem_mb=min(JOB_MEM_MB, node_mb), max_mem_mb=node_mb, runs=[])
    return config


def slurm_node() -> str:
    result = subprocess.run(["scontrol", "show", "node"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        sys.exit(
            f"rehearse_on_slurm: no SLURM answers ({result.stderr.strip()}); start one: "
            "sudo workflow/scripts/local-slurm.sh start"
        )
    return result.stdout


def models_to_prefetch(workdir: Path, config_file: Path, targets: list[str]) -> list[str]:
    """The backbone keys of the prefetch_model jobs a dry run of `targets` schedules."""
    result = subprocess.run(
        snakemake_command(workdir, config_file, "-n", "--cores", "1", targets=targets),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        sys.exit(f"rehearse_on_slurm: the dry run failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    blocks = (result.stdout + result.stderr).split("rule prefetch_model:")[1:]
    return sorted({re.search(r"wildcards: backbone=(\w+)", block).group(1) for block in blocks})


def fill_mirror(config: dict, keys: list[str], mirror: Path) -> None:
    """A random-init model of each backbone's real architecture under its hub name in `mirror`."""
    from della.models.backbone import create_backbone

    for key in keys:
        entry = config["backbones"][key]
        out = mirror / entry["name_or_path"]
        if (out / "config.json").exists():
            continue
        started = time.monotonic()
        create_backbone(entry["kind"], entry["name_or_path"], None, out, config["backbone_seed"])
        print(
            f"hub mirror: {entry['name_or_path']} (random-init, real size) -> {out} "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    from della.pipeline.prefetch import DONE_FILE, cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", help="targets of the rehearsal (e.g. fig3, table8)")
    parser.add_argument("--workdir", type=Path, required=True, help="where the run's files go")
    parser.add_argument("--status-command", choices=("sacct", "squeue"), default="sacct")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    mirror = workdir / "hub-mirror"
    config = rehearsal_config(mirror)
    config_file = workdir / "rehearsal-slurm.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    keys = models_to_prefetch(workdir, config_file, args.targets)
    fill_mirror(config, keys, mirror)
    command = snakemake_command(
        workdir, config_file, "--profile", "slurm", "--slurm-status-command", args.status_command, targets=args.targets
    )
    print(" ".join(command), flush=True)
    started = time.monotonic()
    status = subprocess.run(command, cwd=ROOT).returncode
    records = {}
    for key in config["backbones"]:
        done = workdir / cache_dir(config, key) / DONE_FILE
        if done.exists():
            record = json.loads(done.read_text())
            records[key] = {k: record[k] for k in ("name", "revision", "source", "fetched")}
    summary = {
        "targets": args.targets,
        "command": command,
        "exit_status": status,
        "seconds": round(time.monotonic() - started, 1),
        "prefetched": records,
    }
    (workdir / "rehearsal-slurm.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
