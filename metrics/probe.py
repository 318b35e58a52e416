"""Latent probe: what the posterior means know about a label of the data.

AU and MI say how much the latent variables are used, not what they carry. A probe asks what: for
each label of the data (the records' `labels`, docs/interfaces.md; e.g. Yelp's review rating,
Yahoo's topic) a logistic regression is fitted from the posterior mean E_q[z|x] of the TRAINING
sentences to the label and scored on the TEST sentences:

    Probe[<label>]      accuracy = (1/N) sum_x [probe(E_q[z|x]) = y(x)] on the test sentences
    Probe-F1[<label>]   macro-F1 = the mean over classes of each class's F1 (scikit-learn's
                        classes: those in the test labels or the predictions)
    Majority[<label>]   the accuracy of always answering the most frequent training class (ties:
                        the first in sorted order) on the same test sentences: what a probe that
                        learnt nothing scores. A reference, not a score (higher_is_better null).

    Probe-sample[<label>]     the same probe on one draw z ~ q(z|x) per sentence instead of the
                              mean: what z itself carries (the decoder sees samples, and a mean
                              can separate labels that the posterior's spread then hides)
    Probe-untrained[<label>]  the probe on the posterior means of the same model as initialised,
                              before training (its backbones as loaded, new modules at their seeded
                              initialisation): the floor, what the encoder's features give through
                              untrained latent heads. A reference (higher_is_better null).

Near 100 the label is linearly decodable from the latent; at the majority rate the latent tells
the probe nothing about it; near the untrained floor, training added nothing the probe can read.
Features: all latent groups together, and for a model with several
groups (DELLA: one per layer) each group g alone, `Probe[<label>]@z<g>` (g = 1..G): the mean of
q(z_g | z_<g, x) along the chain of means (the model's `posterior_mean`), i.e. what group g's
posterior holds given the earlier groups' means (for samples: group g's draw along the chain of
draws). One group of DELLA has as many dimensions as a one-group model's whole z (latent_size), so
`Probe[<label>]@z<g>` beside another model's `Probe[<label>]` compares them at matched dimension.
Each value's details hold macro-F1 and the
majority rate (percent, like the value), n_train, n_test, the classes with their counts in
either split, and whether the solver converged. Scaled x100 like the paper's percent metrics.

Settings (`evaluation.probe`, recorded with every value): max_train_examples (the probe is fitted
on a seeded uniform subset of that many training sentences; null: all), C (inverse strength of
the L2 penalty), max_iter (lbfgs iterations), standardize (z-score each feature with the training
subset's mean and deviation first: latent scales differ between models and layers), seed (the
subset, the solver's random_state and torch's RNG while encoding and initialising the untrained
model), samples (Probe-sample), untrained_floor (Probe-untrained).

Labels: every label name any training record carries must be on every training and test record
(an error names the file and line); records without `labels` give no probe values at all.
"""

import random
import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .registry import PERCENT, MetricValue, metric_value, register_metric
from .representation import evaluation_mode

DEFAULTS = {
    "max_train_examples": 2000,
    "C": 1.0,  # scikit-learn's default regularisation
    "max_iter": 1000,
    "standardize": True,
    "seed": 0,
    "samples": True,
    "untrained_floor": True,
}

PROBE, PROBE_F1, MAJORITY = "Probe", "Probe-F1", "Majority"
PROBE_SAMPLE, PROBE_UNTRAINED = "Probe-sample", "Probe-untrained"
PROBE_DESCRIPTION = "logistic regression (scikit-learn LogisticRegression: lbfgs, L2 penalty, multinomial)"
FIT_SPLIT, SCORE_SPLIT = "train", "test"
# A label name becomes part of a metric name, Probe[<label>]@z<g>, which these characters delimit.
NAME_DELIMITERS = "[]@"
METRIC_KEY = re.compile(
    r"^(?P<metric>Probe|Probe-F1|Probe-sample|Probe-untrained|Majority)"
    r"\[(?P<label>[^\[\]@]+)\](?:@z(?P<group>\d+))?$"
)


def resolve(settings: dict | None) -> dict:
    """The probe's settings over its defaults; an unknown key is an error (it would change nothing)."""
    cfg = {**DEFAULTS, **(settings or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown evaluation.probe settings: {sorted(unknown)}")
    return cfg


def metric_key(metric: str, label: str, group: int | None = None) -> str:
    """`Probe[sentiment]` (all latent groups) or `Probe[sentiment]@z3` (group 3 alone)."""
    return f"{metric}[{label}]" + ("" if group is None else f"@z{group}")


def parse_metric_key(key: str) -> tuple[str, str, int | None] | None:
    """(metric, label, group or None) of a probe key of metrics.json; None for any other metric."""
    match = METRIC_KEY.match(key)
    if match is None:
        return None
    return match["metric"], match["label"], None if match["group"] is None else int(match["group"])


# -----------------------------------------------------------------------------
# the labels of the data


def label_names(records: list[dict], source) -> list[str]:
    """The sorted names of the labels the records carry ([] when none has `labels`)."""
    names = set()
    for line, record in enumerate(records, 1):
        labels = record.get("labels")
        if labels is None:
            continue
        if not isinstance(labels, dict):
            raise ValueError(f"{source}:{line}: 'labels' must be an object {{name: value}}, got {labels!r}")
        names.update(labels)
    unusable = sorted(name for name in names if not name or any(c in name for c in NAME_DELIMITERS))
    if unusable:
        raise ValueError(
            f"{source}: label names {unusable} cannot name a metric (Probe[<label>]): "
            f"no empty name and none of {NAME_DELIMITERS!r}"
        )
    return sorted(names)


def label_values(records: list[dict], names: list[str], source) -> dict[str, list]:
    """label name -> its value (an int or a string) on every record."""
    values = {name: [] for name in names}
    for line, record in enumerate(records, 1):
        labels = record.get("labels") or {}
        missing = [name for name in names if name not in labels]
        if missing:
            raise ValueError(f"{source}:{line}: no label {missing} (the training split's records carry {names})")
        for name in names:
            value = labels[name]
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError(f"{source}:{line}: label {name!r} is {value!r}; a label value is an int or a string")
            values[name].append(value)
    return values


def training_subset(n: int, max_examples: int | None, seed: int) -> list[int]:
    """Indices of the training records the probe is fitted on: all of them, or a seeded uniform
    sample of `max_examples` (in file order; a split's first lines may not be a fair sample)."""
    if max_examples is None or n <= max_examples:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), max_examples))


@dataclass
class LabelledSplits:
    """The probe's data: the training records it is fitted on and each label's values on them
    and on the test records (aligned with the records evaluated)."""

    train_records: list[dict]
    train_labels: dict[str, list]
    test_labels: dict[str, list]


def labelled_splits(
    train_records: list[dict], test_records: list[dict], settings: dict | None, train_source, test_source
) -> LabelledSplits | None:
    """The labels of both splits, checked (errors name `train_source` / `test_source` and the
    line), with the training subset of `settings`; None when the training records carry no labels."""
    cfg = resolve(settings)
    names = label_names(train_records, train_source)
    if not names:
        return None
    train_labels = label_values(train_records, names, train_source)
    test_labels = label_values(test_records, names, test_source)
    for name in names:  # one type per label, or the classes of the two splits would never match
        if len({type(value) for value in train_labels[name] + test_labels[name]}) > 1:
            raise ValueError(f"label {name!r} mixes ints and strings in {train_source} and {test_source}")
    rows = training_subset(len(train_records), cfg["max_train_examples"], cfg["seed"])
    return LabelledSplits(
        [train_records[i] for i in rows],
        {name: [column[i] for i in rows] for name, column in train_labels.items()},
        test_labels,
    )


# -----------------------------------------------------------------------------
# features and the probe

MEAN, SAMPLE = "mean", "sample"


def posterior_features(models: dict, batches) -> dict[tuple[str, str], torch.Tensor]:
    """(model name, MEAN or SAMPLE) -> [N, G, P] in float64 on the CPU for every example of
    `batches` (one pass; each model encodes each batch): E_q[z|x] (DELLA: along the chain of
    means) and, for the models in `models` mapped to True, one draw z ~ q(z|x) (along the chain
    of draws). `models`: name -> (model, draw samples?). Call inside `evaluation_mode`."""
    found = {(name, MEAN): [] for name in models}
    found.update({(name, SAMPLE): [] for name, (_, sample) in models.items() if sample})
    for batch in batches:
        for name, (model, sample) in models.items():
            enc = model.encode(batch)
            found[name, MEAN].append(model.posterior_mean(enc).double().cpu())
            if sample:
                found[name, SAMPLE].append(model.sample_posterior(enc, 1)[0][:, 0].double().cpu())
    return {
        key: torch.cat(parts).view(-1, models[key[0]][0].n_groups, models[key[0]][0].latent_size)
        for key, parts in found.items()
    }


def feature_sets(means: torch.Tensor) -> dict[int | None, np.ndarray]:
    """None: all groups together [N, G * P]; with several groups also g (1-based): group g [N, P]."""
    n, n_groups, _ = means.shape
    sets = {None: means.reshape(n, -1).numpy()}
    if n_groups > 1:
        sets.update({g + 1: means[:, g].numpy() for g in range(n_groups)})
    return sets


@dataclass
class ProbeScore:
    """One fitted probe's numbers (fractions) and what they were computed with."""

    accuracy: float
    macro_f1: float
    majority: float
    settings: dict
    details: dict


def _counts(labels: np.ndarray) -> dict[str, int]:
    classes, counts = np.unique(labels, return_counts=True)
    return {str(c): int(k) for c, k in zip(classes.tolist(), counts.tolist(), strict=True)}


def fit_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, cfg: dict, settings: dict
) -> ProbeScore:
    """Fit the probe on (train_x, train_y), score it and the majority class on (test_x, test_y)."""
    classes, counts = np.unique(train_y, return_counts=True)
    majority_class = classes[np.argmax(counts)]  # argmax: ties go to the first class in sorted order
    if len(classes) < 2:  # nothing to tell apart: the probe can only answer the one class
        predicted, n_iter = np.full(len(test_y), majority_class), 0
    else:
        linear = LogisticRegression(C=cfg["C"], max_iter=cfg["max_iter"], random_state=cfg["seed"])
        probe = make_pipeline(StandardScaler(), linear) if cfg["standardize"] else linear
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in the details instead
            probe.fit(train_x, train_y)
        predicted, n_iter = probe.predict(test_x), int(np.max(linear.n_iter_))
    accuracy = float(np.mean(predicted == test_y))
    macro_f1 = float(f1_score(test_y, predicted, average="macro", zero_division=0))
    majority = float(np.mean(test_y == majority_class))
    details = {
        "accuracy": PERCENT * accuracy,
        "macro_f1": PERCENT * macro_f1,
        "majority_accuracy": PERCENT * majority,
        "majority_class": majority_class.item(),
        "n_train": len(train_y),
        "n_test": len(test_y),
        "n_features": train_x.shape[1],
        "class_counts": {FIT_SPLIT: _counts(train_y), SCORE_SPLIT: _counts(test_y)},
        "n_iter": n_iter,
        "converged": n_iter < cfg["max_iter"],
    }
    return ProbeScore(accuracy, macro_f1, majority, settings, details)


FEATURES = {
    PROBE: "posterior mean",
    PROBE_SAMPLE: "one posterior sample",
    PROBE_UNTRAINED: "posterior mean of the model as initialised, before training",
}


def _settings(cfg: dict, label: str, group: int | None, n_groups: int, metric: str = PROBE) -> dict:
    chain = "means" if metric != PROBE_SAMPLE else "draws"
    features = (
        f"{FEATURES[metric]} of all {n_groups} latent group(s)"
        if group is None
        else f"{FEATURES[metric]} of latent group {group} of {n_groups} (along the chain of {chain})"
    )
    return {
        "probe": PROBE_DESCRIPTION,
        "C": cfg["C"],
        "max_iter": cfg["max_iter"],
        "standardize": cfg["standardize"],
        "seed": cfg["seed"],
        "fit_split": FIT_SPLIT,
        "score_split": SCORE_SPLIT,
        "max_train_examples": cfg["max_train_examples"],
        "label": label,
        "features": features,
    }


def probe_accuracy(score: ProbeScore):
    return score.accuracy, score.settings, score.details


# One accuracy, three features: means (a score), samples (a score), the untrained model's means (a floor)
register_metric(PROBE, higher_is_better=True, scale=PERCENT)(probe_accuracy)
register_metric(PROBE_SAMPLE, higher_is_better=True, scale=PERCENT)(probe_accuracy)
register_metric(PROBE_UNTRAINED, higher_is_better=None, scale=PERCENT)(probe_accuracy)


@register_metric(PROBE_F1, higher_is_better=True, scale=PERCENT)
def probe_macro_f1(score: ProbeScore):
    return score.macro_f1, score.settings, score.details


@register_metric(MAJORITY, higher_is_better=None, scale=PERCENT)
def majority_rate(score: ProbeScore):
    settings = {key: score.settings[key] for key in ("fit_split", "score_split", "max_train_examples", "seed", "label")}
    statistic = "accuracy of always answering the most frequent class of the fitted training subset"
    return score.majority, {"statistic": statistic, **settings}, score.details


# -----------------------------------------------------------------------------
# the entry point


def probe_metrics(
    model, train_batches, test_batches, labelled: LabelledSplits, settings: dict | None = None, untrained=None
) -> dict[str, MetricValue]:
    """Probe, Probe-F1 and Majority of every label, the probe on all latent groups together and,
    for a model with several groups, Probe on each group alone; the same on posterior samples
    (Probe-sample, `samples`) and on the means of `untrained`, the model as initialised
    (Probe-untrained, `untrained_floor`; evaluate builds it). `train_batches` are the model's
    batches of `labelled.train_records`, `test_batches` those of the test records (iterables)."""
    cfg = resolve(settings)
    if not model.n_groups:
        raise ValueError("the latent probe needs a model with latent variables (n_groups > 0)")
    if cfg["untrained_floor"] and untrained is None:
        raise ValueError("evaluation.probe.untrained_floor needs the untrained model")
    models = {"trained": (model, cfg["samples"])}
    if cfg["untrained_floor"]:
        models["untrained"] = (untrained, False)
    with evaluation_mode(model, cfg["seed"]):
        train, test = posterior_features(models, train_batches), posterior_features(models, test_batches)
    for split, features, labels in (
        (FIT_SPLIT, train, labelled.train_labels),
        (SCORE_SPLIT, test, labelled.test_labels),
    ):
        lengths = {len(column) for column in labels.values()}
        if lengths != {len(features["trained", MEAN])}:
            raise ValueError(
                f"{split} split: labels of {sorted(lengths)} records for "
                f"{len(features['trained', MEAN])} posterior means"
            )
    probes = {PROBE: ("trained", MEAN)}
    if cfg["samples"]:
        probes[PROBE_SAMPLE] = ("trained", SAMPLE)
    if cfg["untrained_floor"]:
        probes[PROBE_UNTRAINED] = ("untrained", MEAN)
    out = {}
    for label in labelled.train_labels:
        train_y, test_y = np.asarray(labelled.train_labels[label]), np.asarray(labelled.test_labels[label])
        for metric, key in probes.items():
            train_sets, test_sets = feature_sets(train[key]), feature_sets(test[key])
            for group, train_x in train_sets.items():
                score = fit_probe(
                    train_x,
                    train_y,
                    test_sets[group],
                    test_y,
                    cfg,
                    _settings(cfg, label, group, model.n_groups, metric),
                )
                out[metric_key(metric, label, group)] = metric_value(metric, *probe_accuracy(score))
                if metric == PROBE and group is None:
                    out[metric_key(PROBE_F1, label)] = metric_value(PROBE_F1, *probe_macro_f1(score))
                    out[metric_key(MAJORITY, label)] = metric_value(MAJORITY, *majority_rate(score))
    return out
