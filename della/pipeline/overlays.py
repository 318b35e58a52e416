"""Config files as a base plus overlays (docs/workflow.md, "Config files"): a scale's file names
the file it differs from and says only how.

    extends: config/config.yaml        # the base, relative to the repository root; may extend another
    drop: [experiments, datasets.ptb]  # keys of the base removed before the merge
    training: {max_steps: 625}         # everything else: merged onto the base

The merge is Snakemake's for `--configfile a b` (mappings merge key by key; a list, a scalar or null
replaces what the base has), plus `drop`, since a merge alone cannot take a key away: a smaller
scale drops the base's experiments or datasets it does not run and states its own. A dropped key
that the base does not have is an error (a misspelt name would otherwise drop nothing), as is a
cycle of `extends`.

The workflow composes the config Snakemake loaded before validating it (workflow/rules/common.smk),
so `--configfile config/small.yaml` alone gives the small scale, and `--config key=value` and chained
config files still override; every other reader of a config file (tests, `della-bench gpu-memory`,
the benchmarks) reads it with `load`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from della import REPO

EXTENDS = "extends"
DROP = "drop"


def unshared(value):
    """`value` rebuilt with no object reachable twice: YAML's anchors and `<<` merge keys share the
    nested mappings of their copies, and a key dropped from one copy must stay in the others."""
    if isinstance(value, dict):
        return {key: unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unshared(item) for item in value]
    return value


def merge(base: dict, overlay: dict) -> dict:
    """A copy of `base` with `overlay` merged onto it: mappings key by key, anything else replaced
    (as Snakemake merges `--configfile a b`)."""
    merged = unshared(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = unshared(value)
    return merged


def drop_keys(config: dict, paths: list[str], where: str, already_dropped: frozenset[str] = frozenset()) -> dict:
    """A copy of `config` without the dotted `paths` (`datasets.ptb`); a path that is not there is an
    error naming `where`, unless the base's own composition dropped it (`already_dropped`: the same
    overlay given twice, as `--configfile small.yaml small_8_epochs.yaml` merges small's `drop`
    into a config that extends small)."""
    kept = unshared(config)
    for path in paths:
        *parents, leaf = path.split(".")
        node = kept
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            del node[leaf]
        elif path not in already_dropped:
            raise ValueError(f"{where}: drop: {path!r} is not a key of the config it extends")
    return kept


def _compose(config: dict, root: Path, chain: tuple[str, ...]) -> tuple[dict, frozenset[str]]:
    """(the composed config, every path dropped on the way)."""
    if EXTENDS not in config:
        if DROP in config:
            raise ValueError(f"{chain[-1] if chain else 'config'}: `drop` without `extends`: nothing to drop from")
        return unshared(config), frozenset()
    base_name = config[EXTENDS]
    where = chain[-1] if chain else "config"
    if not isinstance(base_name, str):
        raise ValueError(f"{where}: extends: {base_name!r} is not a file name")
    if base_name in chain:
        raise ValueError(f"extends: a cycle: {' -> '.join(chain + (base_name,))}")
    base_file = root / base_name
    if not base_file.is_file():
        raise ValueError(f"{where}: extends: {base_name} does not exist (relative to {root})")
    base, dropped_in_base = _compose(read_yaml(base_file), root, chain + (base_name,))
    paths = config.get(DROP) or []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ValueError(f"{where}: drop: {paths!r} is not a list of dotted key names")
    base = drop_keys(base, paths, where, dropped_in_base)
    own = {key: value for key, value in config.items() if key not in (EXTENDS, DROP)}
    return merge(base, own), dropped_in_base | frozenset(paths)


def compose(config: dict, root: Path = REPO, name: str | None = None) -> dict:
    """`config` with its `extends` chain resolved and its `drop` applied: a config that names
    neither is returned as a copy. `name`: the file it came from, for messages."""
    return _compose(config, Path(root), (name,) if name else ())[0]


def read_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a config file is a mapping of settings, not {type(document).__name__}")
    return document


def load(path, root: Path = REPO) -> dict:
    """The config file at `path` (relative paths from `root`), composed; not validated."""
    path = Path(path)
    full = path if path.is_absolute() else Path(root) / path
    try:
        name = str(full.relative_to(Path(root).resolve()))
    except ValueError:
        name = str(path)
    return compose(read_yaml(full), root, name)
