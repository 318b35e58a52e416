"""Metric registry: one place that knows every metric's name, direction and reporting scale.

In the style of lm-evaluation-harness: a metric function is registered with a decorator,

    @register_metric("Dist", higher_is_better=True, scale=100.0)
    def distinct_n(generated, n): ...  -> (raw_value, settings)

and `compute_metric(name, ...)` calls it and wraps the result into a `MetricValue`, so the
direction and the x100 scaling live next to the name and nowhere else. Functions return the
*raw* value (a fraction for percent metrics) with the settings that produced it, and optionally
a dict of details (per-group breakdowns); the registry multiplies by `scale`.

The names of the paper's metrics are exactly the `metric` column of `paper_tables.csv`
(`PAPER_METRICS`). Two auxiliary estimates have names of their own (NLL, Recon); variants of a
paper metric (the other KL reduction, AU at a second threshold) are reported under their own
keys with the spec of the metric they vary, their settings telling them apart. A reference
value that is not a score (the latent probe's majority-class rate) has no direction:
`higher_is_better=None`, written as null.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

# The metric names of the paper's tables, in table order (docs/interfaces.md).
PAPER_METRICS = (
    "PPL",
    "ELBO",
    "KL",
    "MI",
    "AU",
    "BLEU",
    "CND",
    "MAUVE",
    "Self-BLEU",
    "Dist",
    "JS",
    "ROUGE-1",
    "ROUGE-2",
    "ROUGE-L",
    "BERTScore",
)

PERCENT = 100.0  # scale of the metrics the paper prints x100


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool | None  # None: a reference value, not a score
    scale: float  # reported value = raw value * scale
    fn: Callable  # returns (raw_value, settings) or (raw_value, settings, details)


@dataclass(frozen=True)
class MetricValue:
    """One reported number with everything that changes it.

    `to_dict()` gives the `metrics.json` entry {"value", "higher_is_better", "settings"}, plus a
    "details" key only where there are per-group breakdowns (AU per latent group, ...).
    """

    value: float
    higher_is_better: bool | None
    settings: dict
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"value": self.value, "higher_is_better": self.higher_is_better, "settings": self.settings}
        if self.details:
            out["details"] = self.details
        return out


METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, higher_is_better: bool | None, scale: float = 1.0):
    """Decorator: register the function that computes metric `name` from its inputs."""

    def decorator(fn):
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = MetricSpec(name, higher_is_better, scale, fn)
        return fn

    return decorator


def metric_value(name: str, raw: float, settings: dict, details: dict | None = None) -> MetricValue:
    """Wrap a raw value of metric `name` with its registered direction and scale."""
    spec = METRICS[name]
    return MetricValue(
        value=float(raw) * spec.scale,
        higher_is_better=spec.higher_is_better,
        settings={**settings, "scale": spec.scale},
        details=details or {},
    )


def compute_metric(name: str, *args, **kwargs) -> MetricValue:
    """Call the function registered for `name`; it returns (raw_value, settings[, details])."""
    return metric_value(name, *METRICS[name].fn(*args, **kwargs))
