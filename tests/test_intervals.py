"""The aggregation layer (della/report/intervals.py) against closed forms: the t interval where the t
quantile has one (1 and 2 degrees of freedom), the paired bootstrap against the normal interval a
large sample approaches, Benjamini-Hochberg by hand, and the verdict rule's three outcomes."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from della.report.intervals import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Summary,
    adjusted_p_values,
    one_sided_p_values,
    over_seeds,
    paired_bootstrap,
    paired_over_seeds,
    verdict,
)


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile in closed form: Cauchy for 1 degree of freedom, and for 2."""
    if dof == 1:
        return math.tan(math.pi * (p - 0.5))
    if dof == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    raise ValueError(dof)


@pytest.mark.parametrize("values", [[2.455, 2.461], [31.2, 30.7, 32.9]])
def test_the_interval_over_seeds_is_the_t_interval_of_the_mean(values):
    summary = over_seeds(values)
    n, mean, std = len(values), statistics.fmean(values), statistics.stdev(values)
    half = t_quantile(0.975, n - 1) * std / math.sqrt(n)
    assert (summary.mean, summary.std, summary.n) == (pytest.approx(mean), pytest.approx(std), n)
    assert (summary.low, summary.high) == (pytest.approx(mean - half), pytest.approx(mean + half))


def test_one_seed_has_no_spread_and_no_interval():
    summary = over_seeds([3.0])
    assert (summary.mean, summary.std, summary.low, summary.high, summary.n) == (3.0, None, None, None, 1)
    assert verdict(summary, 0.0) == INCONCLUSIVE
    with pytest.raises(ValueError, match="no values"):
        over_seeds([])
    with pytest.raises(ValueError, match="NaN"):
        over_seeds([1.0, float("nan")])
    overflowed = over_seeds([12.0, math.inf])  # a PPL that overflowed: its mean, and no spread
    assert (overflowed.mean, overflowed.std, overflowed.low, overflowed.n) == (math.inf, None, None, 2)


def test_a_paired_comparison_is_over_the_differences_of_the_same_seeds():
    first, second = {0: 10.0, 1: 12.0, 2: 11.0}, {0: 9.0, 1: 11.5, 2: 10.0}
    assert paired_over_seeds(first, second) == over_seeds([1.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="same seeds"):
        paired_over_seeds(first, {0: 9.0, 1: 11.5})


def test_the_paired_bootstrap_approaches_the_normal_interval_on_a_large_sample():
    rng = random.Random(0)
    base = [rng.gauss(30.0, 5.0) for _ in range(3000)]
    first = [b + rng.gauss(0.3, 1.0) for b in base]  # each sentence's difference: N(0.3, 1)
    summary = paired_bootstrap(first, base, seed=0, n_resamples=2000)
    differences = [f - b for f, b in zip(first, base, strict=True)]
    mean, sem = statistics.fmean(differences), statistics.stdev(differences) / math.sqrt(len(differences))
    assert summary.mean == pytest.approx(mean)
    assert summary.low == pytest.approx(mean - 1.959964 * sem, abs=0.1 * sem)
    assert summary.high == pytest.approx(mean + 1.959964 * sem, abs=0.1 * sem)
    # the pairing matters: the sentences' own spread (5) is far larger than the differences' (1)
    assert summary.high - summary.low < 0.3 * 2 * 1.96 * 5.0 / math.sqrt(len(base))
    assert paired_bootstrap(first, base, seed=0, n_resamples=2000) == summary  # seeded
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap(first, base[:-1])


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.02, 0.05, HOLDS),  # every value in the interval is at least the minimum effect
        (0.01, 0.05, HOLDS),
        (0.005, 0.05, INCONCLUSIVE),  # it contains effects smaller than the minimum, and larger
        (-0.03, 0.009, FAILS),  # it excludes an effect as large as the minimum
        (-0.05, -0.02, FAILS),
    ],
)
def test_three_verdicts_from_the_interval_and_the_minimum_effect(low, high, expected):
    difference = Summary(mean=(low + high) / 2, std=1.0, n=3, low=low, high=high)
    assert verdict(difference, minimum_effect=0.01) == expected


def test_one_sided_p_values_split_the_t_distribution_at_the_minimum_effect():
    difference = over_seeds([0.4, 0.6, 0.5])
    above, below = one_sided_p_values(difference, 0.5)  # the mean is exactly the minimum effect
    assert above == pytest.approx(0.5) and below == pytest.approx(0.5)
    above, below = one_sided_p_values(difference, 0.0)
    assert above + below == pytest.approx(1.0) and above < 0.01
    assert one_sided_p_values(over_seeds([1.0]), 0.0) is None


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.20]
    m = len(p)
    order = sorted(range(m), key=p.__getitem__)
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):  # step-up: the running minimum of p * m / rank from the largest
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        adjusted[i] = running
    assert adjusted_p_values(p) == pytest.approx(adjusted)
    assert adjusted_p_values([]) == []


def test_differing_settings_names_one_source_per_distinct_setting():
    from della.report.intervals import differing_settings

    same = {"a.json": {"k": 1, "n_groups": 4}, "b.json": {"n_groups": 2, "k": 1}}
    assert differing_settings(same, ignore=("n_groups",)) == []
    assert differing_settings(same) == ["a.json", "b.json"]
    three = {"a.json": {"k": 1}, "b.json": {"k": 1}, "c.json": {"k": 2}}
    assert differing_settings(three) == ["a.json", "c.json"]
