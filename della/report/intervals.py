"""Numbers over seeds and sentences, their intervals, and the three verdicts of a comparison.

One place for the statistics behind tables, figures and findings (issue 30), with scipy.stats
doing the statistics (the t distribution, `bootstrap`, `false_discovery_control`) rather than
hand-written copies:

- `over_seeds(values)`: mean, sample standard deviation (ddof 1), count and the 95 % t interval
  of the mean over seeds (none with one seed: one run has no spread to estimate);
- `paired_over_seeds(first, second)`: the same for the per-seed difference first - second, over
  the seeds both ran (a paired comparison: each seed's two runs share data order and
  initialisation, so their difference varies less than either);
- `paired_bootstrap(first, second)`: within one seed, the mean per-sentence difference over the
  same test sentences with a paired bootstrap interval (for NLL / PPL, ELBO, KL);
- `verdict(difference, minimum_effect)`: holds, fails or inconclusive, by where the interval of a
  difference (signed so that the claim says it is positive) lies against the claim's minimum
  effect, stated before any run;
- `adjusted_p_values(p)`: Benjamini-Hochberg over the comparisons of one report;
- `differing_settings(settings_by_source)`: the check that the numbers averaged or compared were
  measured the same way (tables run the same check on their pandas frame).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
HOLDS, FAILS, INCONCLUSIVE, NOT_COMPARABLE = "holds", "fails", "inconclusive", "not comparable"


@dataclass(frozen=True)
class Summary:
    """A mean with its spread and interval. `std`, `low`, `high` are None where they cannot be
    estimated (one value); `method` names how the interval was made."""

    mean: float
    std: float | None
    n: int
    low: float | None
    high: float | None
    confidence: float = CONFIDENCE
    method: str = "t"

    @property
    def has_interval(self) -> bool:
        return self.low is not None


def over_seeds(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample std (ddof 1) and the t interval of the mean of `values` (one per seed)."""
    from scipy import stats

    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values to summarise")
    if any(math.isnan(v) for v in values):
        raise ValueError(f"NaN among {values}")
    mean = statistics.fmean(values)
    if len(values) < 2 or any(math.isinf(v) for v in values):
        # one seed, or an infinite value (a PPL that overflowed): no spread to estimate
        return Summary(mean, None, len(values), None, None, confidence)
    std = statistics.stdev(values)
    if std == 0:  # every seed the same: the interval is the point
        return Summary(mean, 0.0, len(values), mean, mean, confidence)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=std / math.sqrt(len(values)))
    return Summary(mean, std, len(values), float(low), float(high), confidence)


def paired_over_seeds(
    first: Mapping[object, float], second: Mapping[object, float], confidence: float = CONFIDENCE
) -> Summary:
    """`over_seeds` of first[seed] - second[seed]: both must have run the same seeds."""
    if set(first) != set(second):
        raise ValueError(
            f"a paired comparison needs the same seeds on both sides: {sorted(map(str, first))} vs "
            f"{sorted(map(str, second))}"
        )
    return over_seeds([first[seed] - second[seed] for seed in sorted(first, key=str)], confidence)


def paired_bootstrap(
    first: Sequence[float],
    second: Sequence[float],
    seed: int = 0,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> Summary:
    """The mean of first[i] - second[i] over the same test sentences, with scipy's paired BCa
    bootstrap interval (resampling sentences, `seed` for the resampling)."""
    from scipy import stats

    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"a paired bootstrap needs two equally long lists of at least 2 values, got {a.shape} and {b.shape}"
        )
    differences = a - b
    mean = float(differences.mean())
    std = float(differences.std(ddof=1))
    if std == 0:
        return Summary(mean, 0.0, len(a), mean, mean, confidence, "paired bootstrap (BCa)")
    result = stats.bootstrap(
        (a, b),
        lambda x, y, axis=-1: (x - y).mean(axis=axis),
        paired=True,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Summary(mean, std, len(a), float(interval.low), float(interval.high), confidence, "paired bootstrap (BCa)")


def verdict(difference: Summary, minimum_effect: float) -> str:
    """holds: the whole interval is at least `minimum_effect` (the claimed direction positive);
    fails: the whole interval is below it (the data exclude an effect that large); inconclusive:
    the interval straddles it, or there is no interval (one seed)."""
    if minimum_effect < 0:
        raise ValueError(f"a minimum effect is a size, >= 0: got {minimum_effect}")
    if not difference.has_interval:
        return INCONCLUSIVE
    if difference.low >= minimum_effect:
        return HOLDS
    if difference.high < minimum_effect:
        return FAILS
    return INCONCLUSIVE


def one_sided_p_values(difference: Summary, minimum_effect: float) -> tuple[float, float] | None:
    """(p of "the difference is at most the minimum effect", p of "it is at least the minimum
    effect") from the t distribution of a seeds' difference; None without a spread."""
    from scipy import stats

    if difference.std is None or difference.std == 0:
        return None
    statistic = (difference.mean - minimum_effect) / (difference.std / math.sqrt(difference.n))
    return float(stats.t.sf(statistic, difference.n - 1)), float(stats.t.cdf(statistic, difference.n - 1))


def adjusted_p_values(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy.stats.false_discovery_control) of the
    comparisons one report makes, in their order."""
    from scipy import stats

    if not p_values:
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def differing_settings(settings_by_source: Mapping[str, dict], ignore: Sequence[str] = ()) -> list[str]:
    """[] when every source (a file) measured its number with the same settings, keys in
    `ignore` left out (they describe the run, not the measurement); else the sources, one per
    distinct setting, for an error to name."""
    distinct = {}
    for source, settings in settings_by_source.items():
        kept = {key: value for key, value in settings.items() if key not in ignore}
        distinct.setdefault(json.dumps(kept, sort_keys=True, default=str), str(source))
    return sorted(distinct.values()) if len(distinct) > 1 else []
