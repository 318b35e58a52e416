"""Config files as a base plus overlays (della/pipeline/overlays.py): the merge, `drop`, the errors, and the
shipped configs: each composes and validates, and each overlay says only how it differs."""

from __future__ import annotations

import pytest
import yaml

from della.pipeline import overlays
from della.pipeline.config_errors import validate_document

from helpers import ROOT

SHIPPED = ["config.yaml", "small.yaml", "small_8_epochs.yaml", "small_16_epochs.yaml", "paper.yaml", "rehearsal.yaml"]


def write(root, name, document):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
    return path


def test_mappings_merge_and_everything_else_replaces():
    base = {"a": {"x": 1, "y": [1, 2], "z": {"deep": 1}}, "b": 2, "c": None}
    overlay = {"a": {"y": [3], "z": None}, "b": None, "c": {"new": 1}}
    assert overlays.merge(base, overlay) == {"a": {"x": 1, "y": [3], "z": None}, "b": None, "c": {"new": 1}}
    assert base == {"a": {"x": 1, "y": [1, 2], "z": {"deep": 1}}, "b": 2, "c": None}  # not modified


def test_extends_drops_then_merges_and_chains(tmp_path):
    write(tmp_path, "config/base.yaml", {"experiments": {"t1": [1], "t2": [2]}, "datasets": {"a": 1, "b": 2}})
    write(
        tmp_path,
        "config/mid.yaml",
        {"extends": "config/base.yaml", "drop": ["experiments"], "experiments": {"t3": [3]}},
    )
    write(tmp_path, "config/top.yaml", {"extends": "config/mid.yaml", "drop": ["datasets.b"], "datasets": {"c": 3}})
    assert overlays.load("config/top.yaml", root=tmp_path) == {"experiments": {"t3": [3]}, "datasets": {"a": 1, "c": 3}}


def test_a_config_without_extends_is_returned_as_it_is(tmp_path):
    document = {"scale": "x", "models": {"m": {"path": "none"}}}
    write(tmp_path, "plain.yaml", document)
    assert overlays.load("plain.yaml", root=tmp_path) == document


def test_dropping_from_one_yaml_alias_keeps_the_others(tmp_path):
    """`<<: *della` shares della's nested mappings with every copy; a drop from one is not a drop
    from all."""
    write(
        tmp_path,
        "base.yaml",
        "models:\n  della: &della {settings: {rank: 4, storage: summed}}\n  copy: {<<: *della, label: c}\n",
    )
    write(tmp_path, "over.yaml", {"extends": "base.yaml", "drop": ["models.della.settings.storage"]})
    models = overlays.load("over.yaml", root=tmp_path)["models"]
    assert models["della"]["settings"] == {"rank": 4}
    assert models["copy"]["settings"] == {"rank": 4, "storage": "summed"}


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ({"over.yaml": {"extends": "base.yaml", "drop": ["models.misspelt"]}}, "over.yaml: drop: 'models.misspelt'"),
        ({"over.yaml": {"extends": "missing.yaml"}}, "extends: missing.yaml does not exist"),
        ({"over.yaml": {"drop": ["models"]}}, "`drop` without `extends`"),
        ({"over.yaml": {"extends": "loop.yaml"}, "loop.yaml": {"extends": "over.yaml"}}, "a cycle: over.yaml"),
        ({"over.yaml": {"extends": "base.yaml", "drop": "models"}}, "is not a list of dotted key names"),
    ],
)
def test_a_bad_overlay_is_an_error_naming_the_file(tmp_path, documents, message):
    write(tmp_path, "base.yaml", {"models": {"della": {"path": "della"}}})
    for name, document in documents.items():
        write(tmp_path, name, document)
    with pytest.raises(ValueError, match="^.*" + message.replace("(", r"\(").replace("*", r"\*")):
        overlays.load("over.yaml", root=tmp_path)


def test_an_overlay_given_again_after_its_base_composes_the_same():
    """`--configfile config/small.yaml config/small_8_epochs.yaml` (Snakemake merges the two, then
    the workflow composes) gives what `--configfile config/small_8_epochs.yaml` gives."""
    chained = overlays.merge(
        overlays.read_yaml(ROOT / "config/small.yaml"), overlays.read_yaml(ROOT / "config/small_8_epochs.yaml")
    )
    assert overlays.compose(chained) == overlays.load("config/small_8_epochs.yaml")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_composes_and_validates(name):
    config = overlays.load(f"config/{name}")
    assert "extends" not in config and "drop" not in config
    validate_document(config, f"config/{name}", ROOT / "config" / "schema.yaml")
    assert config["scale"] in name or name == "config.yaml"


def restated(overlay: dict, base: dict, path: str = "") -> list[str]:
    """The keys of `overlay` whose value is what `base` already has."""
    found = []
    for key, value in overlay.items():
        if key not in base:
            continue
        if isinstance(value, dict) and isinstance(base[key], dict):
            found += restated(value, base[key], f"{path}{key}.")
        elif value == base[key]:
            found.append(f"{path}{key}")
    return found


@pytest.mark.parametrize("name", [n for n in SHIPPED if "extends" in overlays.read_yaml(ROOT / "config" / n)])
def test_each_overlay_says_only_how_it_differs(name):
    document = overlays.read_yaml(ROOT / "config" / name)
    base = overlays.load(document["extends"])
    base = overlays.drop_keys(base, document.get("drop", []), name)
    own = {key: value for key, value in document.items() if key not in ("extends", "drop")}
    assert restated(own, base) == []


def test_the_restatement_check_can_fail():
    assert restated({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 1, "c": 3}, "d": [1]}) == ["a.b", "d"]
