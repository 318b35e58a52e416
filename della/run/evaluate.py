"""Evaluate one run: representation metrics on the test set, the latent probe (fitted on the
training split, scored on the test set), generation metrics on its samples.

Writes metrics.json (docs/interfaces.md): every value with the settings that produced it, the
decoding settings of the samples, the seed, and the versions/commit/device behind the numbers;
and per_sentence.csv beside it: each test sentence's -log p(x) (and -ELBO and KL for a model
with latents), for paired comparisons over sentences (della/report/findings.py).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import torch

from della.io import PER_SENTENCE_FILE, atomic_write_json, atomic_write_text, provenance
from della.models.vae import KL_LAYERS, TransformerVAE
from della.run.batches import batches, load_records, target_of
from della.run.distributed import world
from della.run.generate import DEVICE_DEFAULT, load_model
from della.run.memory import AUTO, resolve_token_budget
from metrics.probe import LabelledSplits, labelled_splits
from metrics.probe import resolve as resolve_probe_settings

# Keys of the `evaluation` section this module uses itself (the rest go to `metrics`).
# token_budget: tokens per scoring call of the forward-heavy estimators (della/run/memory.py).
RUN_KEYS = ("batch_size", "max_test_examples", "device", "token_budget")
NO_LATENT_METRICS = ("PPL", "NLL")


def read_samples(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def device_batches(model: TransformerVAE, records: list[dict], batch_size: int):
    """The model's collated batches of `records`, each on the model's device, one at a time."""
    return (model.to_device(batch) for batch in batches(records, model.collator, batch_size))


def evaluate(
    model: TransformerVAE,
    records: list[dict],
    samples: list[dict],
    evaluation: dict,
    seed: int,
    labelled: LabelledSplits | None = None,
    sentences: dict | None = None,
) -> dict:
    """name -> MetricValue for every metric of the paper's tables that applies to this model,
    on the test `records` and the model's `samples`, and the latent probe where `labelled` gives
    the labels (and training records) of a model with latents. In a data-parallel run the ranks
    share the representation metrics; the probe and the generation metrics run on rank 0 (the
    others return without them). `sentences` receives each test sentence's numbers."""
    from metrics import generation_metrics, probe_metrics
    from metrics.representation import representation_metrics

    torch.manual_seed(seed)
    metric_settings = {k: v for k, v in evaluation.items() if k not in RUN_KEYS}
    test_batches = list(device_batches(model, records, evaluation["batch_size"]))
    budget = resolve_token_budget(evaluation.get("token_budget", AUTO), model)
    print(
        f"scoring calls of at most {budget} tokens (evaluation.token_budget: {evaluation.get('token_budget', AUTO)})",
        file=sys.stderr,
    )
    results = representation_metrics(
        model,
        test_batches,
        metric_settings["representation"],
        budget,  # shared by the ranks
        KL_LAYERS[model.config.kl_layers],
        sentences,
    )
    if not world().main:  # the probe and the generation metrics run once, on rank 0
        return results
    if not model.n_groups:  # no latent: PPL is exact, and ELBO/KL/MI/AU and the probe do not exist
        results = {name: results[name] for name in NO_LATENT_METRICS}
    elif labelled is not None:
        train_batches = device_batches(model, labelled.train_records, evaluation["batch_size"])
        probe_settings = resolve_probe_settings(metric_settings.get("probe"))
        untrained = untrained_model(model, probe_settings["seed"]) if probe_settings["untrained_floor"] else None
        results.update(probe_metrics(model, train_batches, test_batches, labelled, probe_settings, untrained))
    generated = [s["generated"] for s in samples]
    references = [s["reference"] for s in samples] if model.config.conditional else None
    test_texts = [target_of(r) for r in records]
    results.update(generation_metrics(generated, references, test_texts, metric_settings, model.config.conditional))
    for name, value in results.items():
        if not math.isfinite(value.value):
            raise FloatingPointError(f"metric {name} is {value.value} (settings {value.settings})")
    return results


def untrained_model(model: TransformerVAE, seed: int) -> TransformerVAE:
    """`model` as initialised before training: its backbones as loaded from their folders, its
    new modules at the initialisation of `seed` (the latent probe's floor), in eval mode on the
    same device. The caller's RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TransformerVAE(model.config).to(model.device).eval()


def hub_models_of(model, evaluation: dict) -> dict[str, str]:
    """{role: hub name@revision} of the pinned hub models behind a run's numbers: its backbones and
    the feature models (della/pipeline/prefetch.py records them in each prefetched folder)."""
    from della.pipeline.prefetch import origin
    from metrics.embedding import DEFAULTS as FEATURE_DEFAULTS

    roles = {"decoder": model.config.decoder, "encoder": model.config.encoder}
    for metric, key in (("mauve", "feature_model"), ("bertscore", "model")):
        roles[f"{metric} {key}"] = (evaluation.get(metric) or {}).get(key, FEATURE_DEFAULTS[metric][key])
    found = {role: origin(path) for role, path in roles.items()}
    return {role: f"{o['name']}@{o['revision']}" for role, o in found.items() if o is not None}


def per_sentence_csv(sentences: dict[str, list[float]]) -> str:
    """One row per test sentence, in the test split's order: its numbers (nll, and for a model
    with latents elbo and kl) and its target tokens."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(sentences))
    writer.writerows(zip(*[[repr(float(v)) for v in values] for values in sentences.values()], strict=True))
    return out.getvalue()


def run(
    model_dir: Path,
    test_file: Path,
    samples_file: Path,
    settings: dict,
    seed: int,
    out_file: Path,
    train_file: Path | None = None,
) -> None:
    """Write out_file (metrics.json). `train_file` (the training split) is what the latent probe
    is fitted on; without it, or without `labels` in its records, there is no probe."""
    model = load_model(model_dir, settings["evaluation"].get("device", DEVICE_DEFAULT), "evaluation.device")
    samples = read_samples(samples_file)
    generation_settings = json.loads(samples_file.with_suffix(".settings.json").read_text())
    records = load_records(test_file, settings["evaluation"]["max_test_examples"])
    labelled = None
    if train_file is not None and model.n_groups and world().main:  # where the probe runs
        labelled = labelled_splits(
            load_records(train_file), records, settings["evaluation"].get("probe"), train_file, test_file
        )
    sentences = {}
    try:
        results = evaluate(model, records, samples, settings["evaluation"], seed, labelled, sentences)
    except FloatingPointError as error:  # name the run, so the log says which one
        raise FloatingPointError(f"{out_file}: {error}") from error
    if not world().main:
        return
    document = {
        "dataset": settings["dataset"],
        "model": settings["model"],
        "label": settings["label"],
        "seed": seed,
        "metrics": {name: value.to_dict() for name, value in results.items()},
        "settings": {
            "generation": generation_settings,
            "model": json.loads((model_dir / "config.json").read_text()),
            "n_test_examples": len(records),
        },
        **provenance(model.device, hub_models_of(model, settings["evaluation"])),
    }
    atomic_write_text(out_file.with_name(PER_SENTENCE_FILE), per_sentence_csv(sentences))
    atomic_write_json(out_file, document)
    print(json.dumps({k: round(v.value, 4) for k, v in results.items()}), file=sys.stderr)
