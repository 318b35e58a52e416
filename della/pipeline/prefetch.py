"""Models fetched once, at a pinned revision, into the project's model cache; jobs run offline.

A backbone entry of the config with a `revision` (a commit hash of its hub repository) is a
*pinned hub model*:

    backbones:
      gpt2: {kind: causal, label: GPT-2, name_or_path: gpt2, revision: 607a30d783dfa663caf39e06633721c8d4cfcd7e}

The `prefetch_model` rule (a local rule: it runs where `snakemake` runs, a cluster's login node)
downloads it once into `{model_cache}/{key}/` (`huggingface_hub.snapshot_download` at that
revision: the config and tokenizer files and one copy of the weights, safetensors when the
repository has them), checks that transformers can read it, and writes `prefetched.json` last
(name, revision, source, every file's size and SHA-256). Every train/generate/evaluate job reads
that folder, with `HF_HUB_OFFLINE=1` (della/pipeline/jobenv.py), so no compute node reaches the internet,
and no two jobs race to download into one cache. A MAUVE / BERTScore feature model named like a
pinned backbone (`gpt2-large`) is read from its folder too.

`model_hub_mirror` (a local folder holding `<name>/` for each hub name, e.g. copied from a
machine with internet) replaces the hub: the same rule copies from it instead of downloading;
the tests run it so. docs/cluster.md says what to type with and without internet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from della.io import atomic_write_json

DONE_FILE = "prefetched.json"
PREFETCH_TARGET = "prefetch_models"  # the Snakemake target that fetches every pinned model
# What a model folder needs: its config and tokenizer files, and one copy of the weights.
METADATA_PATTERNS = ("*.json", "*.txt", "*.model")
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def is_pinned_hub_model(entry: dict) -> bool:
    """A config backbone entry that names a hub repository at a pinned revision."""
    return "create" not in entry and bool(entry.get("revision"))


def cache_dir(config: dict, key: str) -> str:
    """Where the prefetch rule puts backbone `key` (relative to the working directory)."""
    return f"{config['model_cache']}/{key}"


def origin(name_or_path: str | None) -> dict | None:
    """{name, revision} of the hub model a prefetched folder holds (its prefetched.json), else None:
    how the numbers computed with it record it, rather than by the cache's path."""
    done = Path(name_or_path) / DONE_FILE if name_or_path else None
    if done is None or not done.is_file():
        return None
    record = json.loads(done.read_text(encoding="utf-8"))
    return {"name": record["name"], "revision": record["revision"]}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_hub(name: str, revision: str, staging: Path) -> str:
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(name, revision=revision)
    weights = next((w for w in WEIGHTS if w in files), None)
    if weights is None:
        raise FileNotFoundError(f"hub repository {name} at {revision} has none of {WEIGHTS}")
    snapshot_download(name, revision=revision, local_dir=staging, allow_patterns=[*METADATA_PATTERNS, weights])
    return f"https://huggingface.co/{name} at {revision}"


def _from_mirror(name: str, mirror: Path, staging: Path) -> str:
    source = Path(mirror) / name
    if not (source / "config.json").is_file():
        raise FileNotFoundError(
            f"model_hub_mirror {mirror} has no {name}/config.json (it must hold one folder per "
            f"hub name, as `huggingface-cli download {name} --local-dir {source}` writes it)"
        )
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(".cache", ".git*"))
    return f"model_hub_mirror {source}"


def prefetch(name: str, revision: str, out_dir: Path, mirror: Path | None = None) -> dict:
    """Fetch hub model `name` at `revision` into `out_dir` (from `mirror` when given); the
    folder appears whole or not at all, `prefetched.json` written last."""
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    source = _from_mirror(name, mirror, staging) if mirror is not None else _from_hub(name, revision, staging)
    from transformers import AutoConfig, AutoTokenizer

    AutoConfig.from_pretrained(staging)  # readable offline, as every job will read it
    AutoTokenizer.from_pretrained(staging)
    files = sorted(p for p in staging.rglob("*") if p.is_file() and ".cache" not in p.parts)
    record = {
        "name": name,
        "revision": revision,
        "source": source,
        "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {str(p.relative_to(staging)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files},
    }
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    atomic_write_json(out_dir / DONE_FILE, record)
    return record


def check_pinned(config: dict, keys, repo: Path, installed: set[str] = frozenset()) -> None:
    """Every hub name a run of the config would load is pinned: a backbone that is neither
    created by a rule, nor pinned, nor an existing local folder, and a feature model that is
    none of these, nor a backbone's name, nor one of the `installed` aliases (metrics/embedding.py's
    packaged MiniLM), stop the workflow at start-up (jobs run offline). `keys`: the backbones
    the runs load; a feature model named like a backbone entry is checked as that entry."""

    def local(name: str) -> bool:
        return (Path(name) if Path(name).is_absolute() else repo / name).exists() or Path(name).exists()

    evaluation = config["evaluation"]
    features = {
        evaluation.get(section, {}).get(field)
        for section, field in (("mauve", "feature_model"), ("bertscore", "model"))
    } - {None, *installed}
    feature_keys = {key for key, entry in config["backbones"].items() if entry["name_or_path"] in features}
    for key in sorted(set(keys) | feature_keys):
        entry = config["backbones"][key]
        if "create" not in entry and not entry.get("revision") and not local(entry["name_or_path"]):
            raise ValueError(
                f"backbones.{key}: {entry['name_or_path']!r} is neither a local folder nor pinned: add "
                f"`revision: <commit hash>` so that it is prefetched once and read offline by every job "
                f"(della/pipeline/prefetch.py; docs/cluster.md, Models)"
            )
    for name in sorted(features - {config["backbones"][key]["name_or_path"] for key in feature_keys}):
        if not local(name):
            raise ValueError(
                f"evaluation: feature model {name!r} is neither a local folder nor a backbone's name: add a "
                f"`backbones` entry with name_or_path {name!r} and its revision, so that it is prefetched"
            )


def missing_model_message(path: str) -> str:
    """What a job says when a pinned model's folder is not there."""
    return (
        f"model folder {path!r} is not there: pinned hub models are fetched once by `snakemake {PREFETCH_TARGET}` "
        f"where the internet is reachable (a login node), or copied in (docs/cluster.md, 'Models')"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch one pinned hub model into the model cache.")
    parser.add_argument("--name", required=True, help="the hub repository, e.g. gpt2")
    parser.add_argument("--revision", required=True, help="the commit hash it is pinned to")
    parser.add_argument("--out", type=Path, required=True, help="{model_cache}/{backbone key}")
    parser.add_argument("--mirror", type=Path, default=None, help="a local folder standing in for the hub")
    args = parser.parse_args(argv)
    try:
        record = prefetch(args.name, args.revision, args.out, args.mirror)
    except (OSError, ValueError) as error:
        print(f"error: prefetching {args.name} at {args.revision}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"{args.name} at {args.revision} -> {args.out} ({len(record['files'])} files, from {record['source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
