"""The workflow's config resolved once, by a function: Fig. 2's sweep models generated from their
`latent_layer_sweeps` entry and added to a copy of `models`, every experiment's model names
expanded (a sweep's name stands for its models), every dataset, model and backbone name checked.
The config as loaded is left as it was; workflow/rules/common.smk reads the copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass


@dataclass(frozen=True)
class Resolved:
    """`config`: the loaded config with the sweeps' models among `models`; `sweeps`: sweep name ->
    {model name: entry}; `experiments`: name -> {"datasets": [...], "models": [...] expanded}."""

    config: dict
    sweeps: dict[str, dict[str, dict]]
    experiments: dict[str, dict[str, list[str]]]

    def model_names(self, names: list[str], where: str) -> list[str]:
        """Model names of an experiment (or a resource override), a sweep's name standing for its
        models; one in neither is an error naming `where`."""
        expanded = []
        for name in names:
            if name in self.sweeps:
                expanded += list(self.sweeps[name])
            elif name in self.config["models"]:
                expanded.append(name)
            else:
                raise ValueError(f"{where}: {name!r} is neither in `models` nor in `latent_layer_sweeps`")
        return expanded


def check_names(config: dict, names: list[str], section: str, where: str) -> None:
    """Every name is an entry of config[section], else an error naming the offending key."""
    for name in names:
        if name not in config[section]:
            raise ValueError(f"{where}: {name!r} is not in `{section}`")


def sweep_models(models: dict, sweep: str, spec: dict) -> dict[str, dict]:
    """Fig. 2's model entries, generated from one sweep: {name: entry}, one per start and end,
    each a copy of the base model's entry with its latent layers and a label that says them."""
    base = models.get(spec["base"])
    if base is None:
        raise ValueError(f"latent_layer_sweeps.{sweep}.base: {spec['base']!r} is not in `models`")
    if sweep in models:
        raise ValueError(f"latent_layer_sweeps.{sweep}: also the name of a `models` entry")
    base_label = base["label"] or spec["base"]
    ranges = [(f"from{s}", s, None, f"{s}-L") for s in spec["starts"]]
    ranges += [(f"to{e}", 1, e, f"1-{e}") for e in spec["ends"]]
    generated = {}
    for suffix, start, end, shown in ranges:
        entry = copy.deepcopy(base)
        entry["latent_layers"] = {"start": start, "end": end}
        entry["label"] = f"{base_label} (layers {shown})"
        generated[f"{sweep}_{suffix}"] = entry
    return generated


def resolve(config: dict) -> Resolved:
    """The resolved copy of a (schema-validated) config; `config` itself is not changed."""
    sweeps = {
        sweep: sweep_models(config["models"], sweep, spec)
        for sweep, spec in config.get("latent_layer_sweeps", {}).items()
    }
    models = dict(config["models"])
    for generated in sweeps.values():
        models.update(generated)
    resolved = Resolved(config={**config, "models": models}, sweeps=sweeps, experiments={})
    for name, spec in config["experiments"].items():
        check_names(config, spec["datasets"], "datasets", f"experiments.{name}.datasets")
        resolved.experiments[name] = {
            "datasets": spec["datasets"],
            "models": resolved.model_names(spec["models"], f"experiments.{name}.models"),
        }
    for name, entry in models.items():
        if "backbone" in entry:
            check_names(config, [entry["backbone"]], "backbones", f"models.{name}.backbone")
    return resolved
