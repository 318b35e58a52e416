"""N-gram metrics of generated text: BLEU, Self-BLEU, Dist, JS, CND and ROUGE.

Every function here takes the *resolved* `evaluation` settings `s` (see `metrics/__init__.py`)
and returns `(raw_value, settings_used)`; the registry scales percent metrics by 100.

Tokenisation (all metrics but conditional BLEU and ROUGE, which use their library's own):
whitespace split of the text, lower-cased when `s["tokenization"]["lowercase"]`.

Multi-reference BLEU, fast and exact
------------------------------------
Unconditional BLEU (paper A.3: every test sentence is a reference of every generated sentence)
and Self-BLEU (Zhu et al. 2018, Texygen: every other generated sentence is a reference) are
means of nltk's `sentence_bleu(references, hypothesis, weights, smoothing_function)`.
Done naively that is O(#hypotheses x #references) n-gram counting: 10k x 10k at paper scale.
But multi-reference BLEU sees the references only through
  * the clip count of each hypothesis n-gram: its *maximum* count in any single reference
    (`nltk.translate.bleu_score.modified_precision`), and
  * the brevity penalty's reference length: the reference length closest to the hypothesis
    length, ties going to the shorter one (`closest_ref_length`).
So `ReferenceSet` stores, once, per n-gram the largest count, how many references reach it and
the second-largest count, plus the multiset of lengths. Leaving one reference out (Self-BLEU)
then needs no recount: the max over the others is the second-largest count exactly when the
left-out sentence was the only one at the maximum. Each hypothesis then costs O(its length).
The tests check equality with nltk's `sentence_bleu` and the naive Self-BLEU loop.
"""

import math
import sys
from bisect import bisect_left
from collections import Counter
from functools import lru_cache

import numpy as np
import scipy.sparse as sparse

from .registry import PERCENT, register_metric

DEFAULTS = {
    "tokenization": {"lowercase": True},
    # BLEU: conditional = sacrebleu corpus BLEU; unconditional = mean multi-reference sentence BLEU.
    "bleu": {"max_n": 4, "smoothing": "method1", "sacrebleu_tokenize": "13a", "sacrebleu_lowercase": False},
    "self_bleu": {"max_n": 4, "smoothing": "method1", "max_hypotheses": None, "seed": 0},
    "dist": {"n": 2},
    "js": {"n": 2, "statistic": "mean_pairwise", "max_exact": 20000, "num_pairs": 200000, "seed": 0},
    "cnd": {"orders": [1, 2, 3, 4]},
    "rouge": {"use_stemmer": True},
}

NLTK_EPSILON = 0.1  # epsilon of nltk's SmoothingFunction().method1 (its default)
NLTK_TINY = sys.float_info.min  # what nltk's method0 puts in place of a zero precision
SMOOTHINGS = ("method0", "method1")  # nltk SmoothingFunction methods reproduced here
JS_BLOCK_ROWS = 1024  # rows of the sparse intersection product computed at a time
ROUGE_TYPES = {"ROUGE-1": "rouge1", "ROUGE-2": "rouge2", "ROUGE-L": "rougeL"}


# -----------------------------------------------------------------------------
# tokens and n-grams


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    return (text.lower() if lowercase else text).split()


def tokenize_all(texts: list[str], s: dict) -> list[list[str]]:
    return [tokenize(t, s["tokenization"]["lowercase"]) for t in texts]


def ngram_counts(tokens: list[str], n: int) -> Counter:
    return Counter(zip(*(tokens[i:] for i in range(n)), strict=False))


def tokenization_settings(s: dict) -> dict:
    return {"tokenization": "whitespace split" + (" of lower-cased text" if s["tokenization"]["lowercase"] else "")}


# -----------------------------------------------------------------------------
# BLEU against a shared reference set


def brevity_penalty(ref_len: int, hyp_len: int) -> float:
    """Papineni et al. 2002, as nltk: 1 if the hypothesis is longer, 0 if it is empty."""
    if hyp_len > ref_len:
        return 1.0
    if hyp_len == 0:
        return 0.0
    return math.exp(1 - ref_len / hyp_len)


def smoothed_precision(numerator: int, denominator: int, smoothing: str) -> float:
    """nltk's SmoothingFunction method0 (none) or method1 (add epsilon to zero counts)."""
    if numerator > 0:
        return numerator / denominator
    if smoothing == "method1":
        return NLTK_EPSILON / denominator
    if smoothing == "method0":
        return NLTK_TINY
    raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")


class ReferenceSet:
    """What multi-reference BLEU needs from a reference set, counted once (see module doc)."""

    def __init__(self, references: list[list[str]], max_n: int):
        self.max_n = max_n
        # top[n][gram] = (largest count in one reference, #references with it, second-largest count)
        self.top = [dict() for _ in range(max_n + 1)]
        for ref in references:
            for n in range(1, max_n + 1):
                table = self.top[n]
                for gram, c in ngram_counts(ref, n).items():
                    best, holders, second = table.get(gram, (0, 0, 0))
                    if c > best:
                        table[gram] = (c, 1, best)
                    elif c == best:
                        table[gram] = (best, holders + 1, second)
                    else:
                        table[gram] = (best, holders, max(second, c))
        self.length_counts = Counter(len(ref) for ref in references)
        self.lengths = sorted(self.length_counts)

    def max_count(self, n: int, gram: tuple, left_out_count: int = 0) -> int:
        """Largest count of `gram` in one reference, leaving out a reference in which it occurs
        `left_out_count` times (0: leave nothing out)."""
        best, holders, second = self.top[n].get(gram, (0, 0, 0))
        if left_out_count and left_out_count == best and holders == 1:
            return second
        return best

    def closest_length(self, hyp_len: int, left_out_len: int | None = None) -> int:
        """Reference length closest to `hyp_len` (ties: the shorter), leaving out one reference
        of length `left_out_len` if given."""
        skip = left_out_len if left_out_len is not None and self.length_counts[left_out_len] == 1 else None
        i = bisect_left(self.lengths, hyp_len)
        candidates = []
        for j, step in ((i, 1), (i - 1, -1)):  # nearest usable length at/above, then below
            while 0 <= j < len(self.lengths) and self.lengths[j] == skip:
                j += step
            if 0 <= j < len(self.lengths):
                candidates.append(self.lengths[j])
        if not candidates:
            raise ValueError("BLEU needs at least one reference")
        return min(candidates, key=lambda length: (abs(length - hyp_len), length))

    def sentence_bleu(self, hyp: list[str], max_n: int, smoothing: str, leave_out_self: bool = False) -> float:
        """= nltk sentence_bleu(references, hyp, uniform weights over 1..max_n, smoothing);
        with `leave_out_self`, `hyp` is itself one of the references and is left out."""
        numerators, denominators = [], []
        for n in range(1, max_n + 1):
            counts = ngram_counts(hyp, n)
            numerators.append(
                sum(min(c, self.max_count(n, gram, c if leave_out_self else 0)) for gram, c in counts.items())
            )
            denominators.append(max(1, sum(counts.values())))
        if numerators[0] == 0:  # nltk returns 0 without smoothing when no unigram matches
            return 0.0
        ref_len = self.closest_length(len(hyp), len(hyp) if leave_out_self else None)
        weight = 1.0 / max_n  # uniform weights, multiplied as nltk does (bit-identical results)
        log_precision = math.fsum(
            weight * math.log(smoothed_precision(num, den, smoothing))
            for num, den in zip(numerators, denominators, strict=True)
        )
        return brevity_penalty(ref_len, len(hyp)) * math.exp(log_precision)


def _bleu_settings(cfg: dict, s: dict) -> dict:
    return {
        "max_n": cfg["max_n"],
        "weights": "uniform",
        "smoothing": f"nltk SmoothingFunction().{cfg['smoothing']}"
        + (f" (epsilon={NLTK_EPSILON})" if cfg["smoothing"] == "method1" else ""),
        **tokenization_settings(s),
    }


def multi_reference_bleu(generated: list[str], references: list[str], s: dict) -> tuple[float, dict]:
    """Unconditional BLEU: mean over generated sentences of the sentence BLEU with the whole
    reference set as the references of each one (paper A.3)."""
    cfg = s["bleu"]
    refs = ReferenceSet(tokenize_all(references, s), cfg["max_n"])
    hyps = tokenize_all(generated, s)
    scores = [refs.sentence_bleu(h, cfg["max_n"], cfg["smoothing"]) for h in hyps]
    return float(np.mean(scores)), {
        "form": "unconditional: mean sentence BLEU, all test sentences as references of each",
        "implementation": "exact fast multi-reference path, equal to nltk sentence_bleu",
        **_bleu_settings(cfg, s),
        "n_generated": len(hyps),
        "n_references": len(references),
    }


def corpus_bleu(generated: list[str], references: list[str], s: dict) -> tuple[float, dict]:
    """Conditional BLEU: sacrebleu corpus BLEU of each hypothesis against its own reference."""
    import sacrebleu

    cfg = s["bleu"]
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} hypotheses but {len(references)} references")
    bleu = sacrebleu.metrics.BLEU(tokenize=cfg["sacrebleu_tokenize"], lowercase=cfg["sacrebleu_lowercase"])
    result = bleu.corpus_score(generated, [references])
    return result.score / PERCENT, {
        "form": "conditional: sacrebleu corpus BLEU against the aligned references",
        "signature": str(bleu.get_signature()),
        "n_generated": len(generated),
    }


@register_metric("BLEU", higher_is_better=True, scale=PERCENT)
def bleu(generated, references, test_texts, conditional: bool, s: dict):
    if conditional:
        return corpus_bleu(generated, references, s)
    return multi_reference_bleu(generated, test_texts, s)


@register_metric("Self-BLEU", higher_is_better=False, scale=PERCENT)
def self_bleu(generated: list[str], s: dict):
    """Texygen Self-BLEU: mean sentence BLEU of each generated sentence with all *other*
    generated sentences as references. `max_hypotheses` scores a seeded random subset of the
    hypotheses (references stay all other sentences); None scores all."""
    cfg = s["self_bleu"]
    hyps = tokenize_all(generated, s)
    if len(hyps) < 2:
        raise ValueError("Self-BLEU needs at least two generated sentences")
    refs = ReferenceSet(hyps, cfg["max_n"])
    chosen = range(len(hyps))
    if cfg["max_hypotheses"] is not None and cfg["max_hypotheses"] < len(hyps):
        rng = np.random.default_rng(cfg["seed"])
        chosen = sorted(rng.choice(len(hyps), size=cfg["max_hypotheses"], replace=False))
    scores = [refs.sentence_bleu(hyps[i], cfg["max_n"], cfg["smoothing"], leave_out_self=True) for i in chosen]
    return float(np.mean(scores)), {
        "references": "all other generated sentences",
        **_bleu_settings(cfg, s),
        "n_generated": len(hyps),
        "n_scored": len(scores),
        "max_hypotheses": cfg["max_hypotheses"],
        "seed": cfg["seed"],
    }


# -----------------------------------------------------------------------------
# diversity: Dist-n and pairwise Jaccard similarity


@register_metric("Dist", higher_is_better=True, scale=PERCENT)
def distinct_n(generated: list[str], s: dict):
    """Dist-n (Li et al. 2016): distinct n-grams / all n-grams over all generations."""
    n = s["dist"]["n"]
    counts = Counter()
    for tokens in tokenize_all(generated, s):
        counts.update(ngram_counts(tokens, n))
    total = sum(counts.values())
    return (len(counts) / total if total else 0.0), {"n": n, "pooling": "corpus", **tokenization_settings(s)}


def _ngram_sets(token_lists: list[list[str]], n: int) -> list[set]:
    return [set(ngram_counts(tokens, n)) for tokens in token_lists]


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; two empty sets share nothing: 0."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def pairwise_jaccard_exact(sets: list[set]) -> tuple[float, float]:
    """(mean over all unordered pairs, mean over sentences of the largest similarity to any
    other sentence), both exact, via a sparse set-incidence product: only pairs that share an
    n-gram have a non-zero similarity, and only those appear in X X^T (no loop over pairs)."""
    vocab = {}
    rows, cols = [], []
    for i, grams in enumerate(sets):
        for gram in grams:
            rows.append(i)
            cols.append(vocab.setdefault(gram, len(vocab)))
    n = len(sets)
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(n, len(vocab)))
    sizes = np.diff(x.indptr)
    xt = x.T.tocsr()
    # The product's entries come in an order that follows the n-gram ids, i.e. set iteration order,
    # which Python's hash seed changes from process to process: fsum's exactly rounded sum makes the
    # mean the same bytes in every process (each block's sum exactly rounded, in block order).
    block_sums, best = [], np.zeros(n)
    for start in range(0, n, JS_BLOCK_ROWS):
        inter = (x[start : start + JS_BLOCK_ROWS] @ xt).tocoo()
        i, j = inter.row + start, inter.col
        other = j != i
        i, j, shared = i[other], j[other], inter.data[other].astype(np.float64)
        similarity = shared / (sizes[i] + sizes[j] - shared)
        block_sums.append(math.fsum(similarity[j > i]))
        np.maximum.at(best, i, similarity)
    return math.fsum(block_sums) / (n * (n - 1) / 2), float(best.mean())


def mean_pairwise_jaccard_sampled(sets: list[set], num_pairs: int, seed: int) -> float:
    """Unbiased estimate from `num_pairs` pairs drawn uniformly (with replacement) among the
    pairs of distinct sentences, with a seeded generator."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(sets), size=num_pairs)
    second = rng.integers(0, len(sets) - 1, size=num_pairs)
    second = second + (second >= first)  # uniform over the other sentences
    return float(np.mean([jaccard(sets[i], sets[j]) for i, j in zip(first, second, strict=True)]))


JS_STATISTICS = {
    "mean_pairwise": "mean Jaccard similarity over all pairs of generated sentences (DELLA A.3)",
    "mean_max": "mean over sentences of the largest Jaccard similarity to another generated "
    "sentence (1 - 'Diversity' of Wang and Wan 2018, SentiGAN)",
}


@register_metric("JS", higher_is_better=False, scale=1.0)
def jaccard_similarity(generated: list[str], s: dict):
    """Jaccard similarity of the generations' n-gram sets (Wang and Wan 2018; DELLA A.3: "the
    average n-gram Jaccard similarity between every two generated sequences").

    `statistic` picks the reported number (JS_STATISTICS); the other one is in the details
    whenever the exact pass runs (up to `max_exact` sentences; above it mean_pairwise is a
    seeded sample of `num_pairs` pairs and mean_max is not available)."""
    cfg = s["js"]
    if cfg["statistic"] not in JS_STATISTICS:
        raise ValueError(f"evaluation.js.statistic must be one of {sorted(JS_STATISTICS)}, got {cfg['statistic']!r}")
    sets = _ngram_sets(tokenize_all(generated, s), cfg["n"])
    if len(sets) < 2:
        raise ValueError("JS needs at least two generated sentences")
    settings = {
        "n": cfg["n"],
        "sets": "n-gram sets (types) of each sentence",
        "statistic": cfg["statistic"],
        "definition": JS_STATISTICS[cfg["statistic"]],
        **tokenization_settings(s),
        "n_generated": len(sets),
    }
    if len(sets) <= cfg["max_exact"]:
        values = dict(zip(("mean_pairwise", "mean_max"), pairwise_jaccard_exact(sets), strict=True))
        return values[cfg["statistic"]], {**settings, "pairs": "all"}, values
    if cfg["statistic"] != "mean_pairwise":
        raise ValueError(
            f"JS statistic {cfg['statistic']!r} needs the exact pass: "
            f"{len(sets)} generations > evaluation.js.max_exact = {cfg['max_exact']}"
        )
    value = mean_pairwise_jaccard_sampled(sets, cfg["num_pairs"], cfg["seed"])
    return value, {**settings, "pairs": f"{cfg['num_pairs']} sampled", "seed": cfg["seed"]}


# -----------------------------------------------------------------------------
# CND: divergence of reference and generated n-gram distributions

CND_DEFINITION = "approximation: mean n-gram Jensen-Shannon divergence (Li et al. 2020's exact formula unavailable)"
MAX_JSD_BITS = 1.0  # the Jensen-Shannon divergence (base 2) of two disjoint distributions


def jensen_shannon(p: Counter, q: Counter) -> float:
    """Jensen-Shannon divergence, in bits, of the distributions given by two count tables.

    A side without any n-gram (e.g. one-word generations have no bigrams) shares nothing with
    the other side: that is the maximum, 1 bit; two empty sides do not differ (0)."""
    p_total, q_total = sum(p.values()), sum(q.values())
    if not p_total or not q_total:
        return 0.0 if p_total == q_total else MAX_JSD_BITS
    terms = []
    for gram in p.keys() | q.keys():
        a, b = p.get(gram, 0) / p_total, q.get(gram, 0) / q_total
        mid = (a + b) / 2
        if a:
            terms.append(a * math.log2(a / mid))
        if b:
            terms.append(b * math.log2(b / mid))
    # fsum: exactly rounded, so the value does not depend on the set's order, which follows
    # Python's per-process string hash seed (two evaluations of the same texts agree to the bit)
    return math.fsum(terms) / 2


def corpus_ngram_counts(token_lists: list[list[str]], n: int) -> Counter:
    counts = Counter()
    for tokens in token_lists:
        counts.update(ngram_counts(tokens, n))
    return counts


@register_metric("CND", higher_is_better=False, scale=1.0)
def cnd(generated: list[str], test_texts: list[str], s: dict):
    """CND: divergence between the reference and the generated text distribution in n-gram space.

    Source: Li, Lan, Guo, Cheng, "On the Relation between Quality-Diversity Evaluation and
    Distribution-Fitting Goal in Text Generation", ICML 2020 (arXiv 2007.01488), as cited by the
    DELLA paper (A.3: "CND approximates the divergence of the empirical reference distribution
    and generated text distribution in n-gram spaces"). Li et al.'s own n-gram formula could not
    be retrieved (no copy of the paper's body or code was reachable; docs/metrics.md says what
    was searched), so this is a named approximation of that description with the Jensen-Shannon
    divergence, which is symmetric, 0 iff the distributions are equal and bounded by 1 bit:

        P_n(g) = count of n-gram g in the test texts / all their n-grams     (same for G_n)
        CND    = (1/|orders|) sum_{n in orders} JSD(P_n, G_n),
        JSD(P, G) = 1/2 KL(P || M) + 1/2 KL(G || M),  M = (P + G) / 2,  log base 2.
    """
    orders = list(s["cnd"]["orders"])
    refs, gens = tokenize_all(test_texts, s), tokenize_all(generated, s)
    per_order = [jensen_shannon(corpus_ngram_counts(refs, n), corpus_ngram_counts(gens, n)) for n in orders]
    return float(np.mean(per_order)), {
        "definition": CND_DEFINITION,
        "divergence": "Jensen-Shannon (bits) of n-gram frequency distributions, mean over orders",
        "empty_side": "an order with n-grams on one side only counts as 1 bit (disjoint)",
        "orders": orders,
        **tokenization_settings(s),
        "n_generated": len(gens),
        "n_references": len(refs),
    }


# -----------------------------------------------------------------------------
# ROUGE (conditional tasks), via Google's rouge-score


@lru_cache(maxsize=1)
def _rouge_f_measures(generated: tuple, references: tuple, use_stemmer: bool) -> dict:
    """Mean F-measure of each ROUGE type over the aligned pairs (computed once for all three)."""
    from rouge_score import rouge_scorer

    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} hypotheses but {len(references)} references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES.values()), use_stemmer=use_stemmer)
    totals = Counter()
    for hyp, ref in zip(generated, references, strict=True):
        for rouge_type, score in scorer.score(target=ref, prediction=hyp).items():
            totals[rouge_type] += score.fmeasure
    return {rouge_type: totals[rouge_type] / len(generated) for rouge_type in ROUGE_TYPES.values()}


def _register_rouge(metric_name: str, rouge_type: str):
    @register_metric(metric_name, higher_is_better=True, scale=PERCENT)
    def rouge(generated: list[str], references: list[str], s: dict):
        use_stemmer = s["rouge"]["use_stemmer"]
        value = _rouge_f_measures(tuple(generated), tuple(references), use_stemmer)[rouge_type]
        return value, {
            "implementation": "rouge-score",
            "rouge_type": rouge_type,
            "statistic": "F-measure, mean over pairs",
            "use_stemmer": use_stemmer,
            "tokenizer": "rouge-score default",
            "n_generated": len(generated),
        }

    return rouge


for _name, _type in ROUGE_TYPES.items():
    _register_rouge(_name, _type)
