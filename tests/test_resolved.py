"""The workflow's config resolved by one function (della/pipeline/resolved.py): Fig. 2's sweeps become
models of a copy, the experiments name them, the loaded config stays as it was."""

import copy

import pytest
from snakemake.utils import validate

from della.models.vae import VAEConfig
from della.pipeline import overlays
from della.pipeline.resolved import resolve
from della.pipeline.targets import train_settings, trains

from helpers import ROOT


@pytest.fixture(params=["config.yaml", "small.yaml", "paper.yaml"])
def config(request):
    """A shipped config as the workflow sees it: schema-validated, its defaults filled in."""
    loaded = overlays.load(f"config/{request.param}")
    validate(loaded, str(ROOT / "config" / "schema.yaml"))
    return loaded


def test_the_loaded_config_is_not_changed(config):
    before = copy.deepcopy(config)
    resolved = resolve(config)
    assert config == before
    assert set(resolved.config["models"]) > set(config["models"]) or not config.get("latent_layer_sweeps")


def test_each_sweep_becomes_a_model_per_start_and_end_copied_from_its_base(config):
    resolved = resolve(config)
    for sweep, spec in config["latent_layer_sweeps"].items():
        base = config["models"][spec["base"]]
        names = [f"{sweep}_from{s}" for s in spec["starts"]] + [f"{sweep}_to{e}" for e in spec["ends"]]
        assert list(resolved.sweeps[sweep]) == names
        for start in spec["starts"]:
            entry = resolved.config["models"][f"{sweep}_from{start}"]
            assert entry["latent_layers"] == {"start": start, "end": None}
            assert {k: v for k, v in entry.items() if k not in ("latent_layers", "label")} == {
                k: v for k, v in base.items() if k not in ("latent_layers", "label")
            }
            assert entry["label"] == f"{base['label'] or spec['base']} (layers {start}-L)"
        for end in spec["ends"]:
            assert resolved.config["models"][f"{sweep}_to{end}"]["latent_layers"] == {"start": 1, "end": end}
    for name, spec in config["experiments"].items():
        expected = [m for model in spec["models"] for m in (resolved.sweeps.get(model) or [model])]
        assert resolved.experiments[name] == {"datasets": spec["datasets"], "models": expected}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["experiments"]["table1"]["models"].append("dela"), r"table1.models: 'dela' is neither"),
        (lambda c: c["experiments"]["table1"]["datasets"].append("yelpp"), r"experiments.table1.datasets: 'yelpp'"),
        (lambda c: c["latent_layer_sweeps"]["della_layers"].update(base="dela"), r"della_layers.base: 'dela'"),
        (lambda c: c["latent_layer_sweeps"].update(della={"base": "della", "starts": [2], "ends": []}), "also the"),
        (lambda c: c["models"]["della"].update(backbone="gpt3"), r"models.della.backbone: 'gpt3' is not in"),
    ],
)
def test_a_name_in_no_section_is_an_error_naming_its_key(change, message):
    config = overlays.load("config/config.yaml")
    change(config)
    with pytest.raises(ValueError, match=message):
        resolve(config)


def test_every_run_of_every_config_builds_its_model_config(config):
    """The model's keys have one home, VAEConfig's fields: each run's train settings (as the train
    rule passes them) build a config with every key of the model entry, none dropped."""
    resolved = resolve(config)
    for spec in resolved.experiments.values():
        for dataset in spec["datasets"]:
            for model in filter(lambda m: trains(resolved.config, m), spec["models"]):
                settings = train_settings(resolved.config, dataset, model)
                built = VAEConfig.from_settings(settings).with_training(settings["training"])
                for key, value in settings["model"].items():
                    if key != "encoder_backbone":
                        assert getattr(built, "path_settings" if key == "settings" else key) == value, (model, key)
                assert built.bow_weight == settings["training"]["bow_weight"]


def test_a_model_key_that_is_no_field_is_an_error():
    config = overlays.load("config/config.yaml")
    validate(config, str(ROOT / "config" / "schema.yaml"))
    settings = train_settings(config, "yelp", "della")
    settings["model"]["latnet_size"] = 8
    with pytest.raises(ValueError, match="'latnet_size' is no key of the model"):
        VAEConfig.from_settings(settings)
