"""Estimators for latent-variable language models: IW-PPL, ELBO, KL, MI and AU.

Written once against the estimator interface of docs/interfaces.md (`encode`,
`sample_posterior`, `log_posterior`, `log_posterior_groups`, `log_prior`, `log_likelihood`, `kl`,
`posterior_mean`, `n_groups`, `latent_size`, `num_target_tokens`), so every model is measured by
the same code.

* IW log p(x) (Burda et al. 2016; He et al. 2019):
      log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x),
  a lower bound that tightens as k grows and is exact for every k when q is the true posterior.
  The k samples are drawn in one call and scored `iw_chunk` at a time, each chunk in batched
  model calls of at most `token_budget` tokens (rows x padded length; della/run/memory.py): both
  trade speed for memory and do not change the estimate.
  IW-PPL = exp(-sum_x log p(x) / sum_x num_target_tokens(x)).
* ELBO, reported as the loss -ELBO per sentence (mean over sentences):
      -ELBO = -E_q log p(x|z) + KL,
  the reconstruction term averaged over the same k importance samples (as DELLA's official
  code does), KL from `kl(enc, batch)` [B, G] reduced over the G latent groups by
  `kl_reduction`: "sum" is the KL of the whole latent (the bound); "mean" is DELLA's official
  code, which averages its 12 layer-wise KLs and so is not on the scale of single-latent
  models. Both are reported: KL/ELBO under `kl_reduction` and KL_/ELBO_{other}_over_layers.
* MI (Alemi et al. 2018; estimator of He et al. 2019, as in vae-lagging-encoder and Optimus):
      I(x; z) = E_x E_q(z|x) [log q(z|x)] - E_x E_q(z|x) [log q(z)],
      log q(z) ~= logsumexp_j log q(z | x_j) - log N   over all N evaluation examples,
  with `mi_samples` z per example (the first importance samples). The aggregate is built in a
  second pass over the batches, re-encoding each (encodings may be large), evaluating
  `log_posterior_groups(enc_j, z)` for every sample z in chunks of `mi_chunk`.
  Per layer (DELLA's chain z_1 -> ... -> z_G): the marginal q(z_g | x) of one layer has no closed
  form, but every prefix z_<=g does (the chain samples z_<=g without looking at z_>g), so the
  same estimator gives I(x; z_<=g) from the prefix sums of log q(z_h | z_<h, x), and the chain
  rule splits the total exactly into per-layer terms
      I(x; z) = sum_g I(x; z_g | z_<g),   I(x; z_g | z_<g) = I(x; z_<=g) - I(x; z_<g),
  reported as details (per_group, prefix); "MI" is the total and "MI_mean_over_layers" the
  mean of the per-layer terms (total / G). Each term carries the estimator's Monte Carlo error,
  so a term near 0 can come out slightly negative.
* Which layers (`layers`): "penalised" (the paper's) reports KL, ELBO, MI and AU over the latent
  groups the model's training loss penalises (`penalised_groups`; all of them but for Table 4's
  "KL only on z_1 / z_L", whose printed KL 0.15 / 0.73 and AU 0 are the trained layer's, while the
  unpenalised layers' KL runs to hundreds of nats); "all" over every group. Where the two differ,
  the all-groups numbers are reported too (KL_all_layers, ELBO_all_layers, MI_all_layers,
  AU_all_layers). MI over a subset of groups is the sum of their chain-rule terms: I(x; z_1) for
  the first layer, I(x; z_L | z_<L) for the last.
* Per sentence (`per_sentence`): -log p(x), -ELBO and KL of each test sentence (the reported
  layers) and its target tokens, in the order of the batches, for paired comparisons over
  sentences (della/report/findings.py writes their bootstrap).
* AU (Burda et al. 2016): dimensions d with Var_x(E_q[z_d | x]) >= delta (unbiased variance
  and ">=", as vae-lagging-encoder and DELLA's code), counted per latent group and averaged
  over groups (the paper: "we calculate AU for the latent variable in each layer and then
  report the average"); for one group that is the count. delta = `au_threshold` (0.2, the
  paper's) gives "AU"; each of `au_extra_thresholds` (0.01, the usual one) gives "AU@delta".

Randomness and ranks: the draws for batch i come from a generator seeded by (seed, i), so a
batch's numbers do not depend on which batches came before it. Inside a data-parallel run
(della/run/distributed.py) each rank takes every N-th batch in the first pass and every N-th chunk of
MI samples in the second; the per-batch and per-chunk results are gathered and summed in the
original order, so the numbers equal those of one process.
"""

import contextlib
import math
from dataclasses import dataclass, field

import torch

from della.run.distributed import derived_seed, gather_in_order, shard

from .registry import MetricValue, metric_value, register_metric

DEFAULTS = {
    "iw_samples": 30,  # DELLA's official evaluation (sample_times); He et al. 2019 used 500
    "iw_chunk": 10,
    "kl_reduction": "sum",
    "au_threshold": 0.2,
    "au_extra_thresholds": [0.01],
    "mi_samples": 1,
    "mi_chunk": 1024,
    "seed": 0,
    "layers": "penalised",
}

KL_REDUCTIONS = ("sum", "mean")
LAYERS = ("penalised", "all")
PER_SENTENCE_COLUMNS = ("nll", "elbo", "kl", "n_tokens")
TOKEN_COUNT = "model.num_target_tokens: target tokens incl. the end-of-text token"
MI_ESTIMATOR = "He et al. 2019: log q(z) = logsumexp_j log q(z|x_j) - log N over all N examples"


@dataclass
class Totals:
    """Sums over the evaluation set, gathered in one pass."""

    n_examples: int = 0
    n_tokens: float = 0.0
    log_px: float = 0.0  # sum_x IW estimate of log p(x)
    recon_nll: float = 0.0  # sum_x -E_q log p(x|z)
    kl_groups: list = field(default_factory=list)  # [B, G] KL of each example's latent groups, per batch
    per_sentence: dict = field(default_factory=lambda: {"log_px": [], "recon_nll": [], "n_tokens": []})
    posterior_means: list = field(default_factory=list)  # [B, D] per batch (AU)
    mi_z: list = field(default_factory=list)  # [B * mi_samples, D] per batch (MI)
    mi_log_q: list = field(default_factory=list)  # log q(z_g|z_<g,x) of those samples, [B * mi_samples, G]
    mi_prefix: list = field(default_factory=list)  # I(x; z_<=g), g = 1..G


def _sum(x: torch.Tensor) -> float:
    return x.double().sum().item()


# -----------------------------------------------------------------------------
# the passes over the data


def batch_width(batch) -> int:
    """Positions one row of `batch` takes: the widest of its tensors (a batch is a dict of
    [B, ...] tensors, or one tensor)."""
    tensors = batch.values() if isinstance(batch, dict) else [batch]
    return max([t.shape[1] for t in tensors if t.dim() >= 2] or [1])


def batch_rows(batch, start: int, stop: int):
    """Examples start..stop of `batch`, at the batch's padded width (so each row's numbers are
    those it has in the whole batch)."""
    if isinstance(batch, dict):
        return {name: t[start:stop] for name, t in batch.items()}
    return batch[start:stop]


def scored_log_likelihood(model, batch, z: torch.Tensor, token_budget: int | None) -> torch.Tensor:
    """log p(x|z) [B, c] from calls of at most `token_budget` tokens each (rows x padded width;
    at least one row per call), so that the [rows, T, vocab] logits of a call stay within the
    budget whatever the length; None: one call. Each row is scored as in one call (rows do not
    interact), so the budget changes how the work is cut, not the values (della/run/memory.py)."""
    b, c = z.shape[:2]
    rows = b * c if token_budget is None else max(1, token_budget // batch_width(batch))
    if b * c <= rows:
        return model.log_likelihood(batch, z)
    samples = min(c, rows)  # per call: `samples` samples of `examples` examples
    examples = max(1, rows // samples)
    return torch.cat(
        [
            torch.cat(
                [
                    model.log_likelihood(batch_rows(batch, e, e + examples), z[e : e + examples, s : s + samples])
                    for s in range(0, c, samples)
                ],
                dim=1,
            )
            for e in range(0, b, examples)
        ],
        dim=0,
    )


def importance_samples(model, batch, enc, k: int, chunk: int, token_budget: int | None = None):
    """Yield (z [B, c, D], log q [B, c], log p(x|z) [B, c], log weight [B, c]) chunk by chunk.
    All k draws come first (z is small; the scoring's [B * c, T, vocab] logits are not), so the
    same seed gives the same samples, and the same estimate, whatever the chunk size."""
    z_all, log_q_all = model.sample_posterior(enc, k)
    for start in range(0, k, chunk):
        z, log_q = z_all[:, start : start + chunk], log_q_all[:, start : start + chunk]
        log_lik = scored_log_likelihood(model, batch, z, token_budget)
        yield z, log_q, log_lik, log_lik + model.log_prior(batch, z) - log_q


def batch_pass(model, batch, cfg: dict, token_budget: int | None = None) -> dict:
    """One batch's share of the totals (its own sums and tensors)."""
    k, mi_samples = cfg["iw_samples"], cfg["mi_samples"]
    enc = model.encode(batch)
    log_w, log_lik, mi_z = [], [], []
    for z, _, ll, lw in importance_samples(model, batch, enc, k, cfg["iw_chunk"], token_budget):
        log_w.append(lw.double())
        log_lik.append(ll.double())
        missing = mi_samples - sum(zz.shape[1] for zz in mi_z)
        if missing > 0:  # MI reuses the first importance samples
            mi_z.append(z[:, :missing])
    kl = model.kl(enc, batch).double()  # [B, G]
    z = torch.cat(mi_z, dim=1)  # [B, mi_samples, D]
    log_px = torch.logsumexp(torch.cat(log_w, dim=1), dim=1) - math.log(k)  # [B]
    recon_nll = -torch.cat(log_lik, dim=1).mean(dim=1)  # [B]
    n_tokens = model.num_target_tokens(batch).double()  # [B]
    part = {
        "log_px": _sum(log_px),
        "recon_nll": _sum(recon_nll),
        "kl_groups": kl.cpu(),
        "per_sentence": {"log_px": log_px.cpu(), "recon_nll": recon_nll.cpu(), "n_tokens": n_tokens.cpu()},
        "n_examples": kl.shape[0],
        "n_tokens": _sum(n_tokens),
        "posterior_means": model.posterior_mean(enc).double().cpu(),
        "mi_z": z.reshape(z.shape[0] * z.shape[1], z.shape[2]).cpu(),  # explicit: D may be 0
    }
    if model.n_groups:
        log_q_groups = model.log_posterior_groups(enc, z).double()  # [B, mi_samples, G]
        part["mi_log_q"] = log_q_groups.reshape(-1, log_q_groups.shape[-1]).cpu()
    return part


def first_pass(model, batches, cfg: dict, token_budget: int | None = None) -> Totals:
    """The totals over `batches` (a list): this rank's batches, each seeded by its index, then
    every rank's results added up in batch order."""
    parts = []
    for i in shard(len(batches)):
        torch.manual_seed(derived_seed(cfg["seed"], i))
        parts.append((i, batch_pass(model, batches[i], cfg, token_budget)))
    t = Totals()
    for part in gather_in_order(parts):
        t.log_px += part["log_px"]
        t.recon_nll += part["recon_nll"]
        t.kl_groups.append(part["kl_groups"])
        for name, values in part["per_sentence"].items():
            t.per_sentence[name].append(values)
        t.n_examples += part["n_examples"]
        t.n_tokens += part["n_tokens"]
        t.posterior_means.append(part["posterior_means"])
        t.mi_z.append(part["mi_z"])
        if "mi_log_q" in part:
            t.mi_log_q.append(part["mi_log_q"])
    return t


def aggregate_log_posterior(model, batches, z: torch.Tensor, chunk: int) -> torch.Tensor:
    """log q(z_m,<=g) ~= logsumexp_j log q(z_m,<=g | x_j) - log N for every sample z_m [M, D]
    and every prefix of groups g = 1..G: [M, G]. Each rank computes its chunks of samples over
    all the examples, on the model's device (`model.device`, CPU for a model without one)."""
    device = getattr(model, "device", torch.device("cpu"))
    starts = range(0, z.shape[0], chunk)
    mine = [starts[c] for c in shard(len(starts))]
    log_q_agg = {
        start: torch.full(
            (len(z[start : start + chunk]), model.n_groups), -math.inf, dtype=torch.float64, device=device
        )
        for start in mine
    }
    n_x = 0
    for batch in batches:
        enc = model.encode(batch) if mine else None
        batch_size = len(model.num_target_tokens(batch))
        for start in mine:
            z_chunk = z[start : start + chunk].to(device)
            z_rows = z_chunk.unsqueeze(0).expand(batch_size, -1, -1).contiguous()  # [B, c, D]
            log_q = model.log_posterior_groups(enc, z_rows).double().cumsum(-1)  # [B, c, G]: log q(z_m,<=g | x_j)
            part = log_q_agg[start]
            log_q_agg[start] = torch.logaddexp(part, torch.logsumexp(log_q, dim=0).to(part.device))
        n_x += batch_size
    gathered = gather_in_order([(start, part.cpu()) for start, part in log_q_agg.items()])
    return torch.cat(gathered).to(z.device) - math.log(n_x)


# -----------------------------------------------------------------------------
# the reported numbers, each from the totals


def _common(t: Totals, cfg: dict) -> dict:
    return {"n_examples": t.n_examples, "n_target_tokens": t.n_tokens, "token_count": TOKEN_COUNT, "seed": cfg["seed"]}


def _iw(cfg: dict) -> dict:
    if cfg["no_latent"]:
        return {"estimator": "exact: no latent variable, log p(x) = log p(x|z)"}
    return {
        "estimator": "importance-weighted bound (Burda et al. 2016)",
        "iw_samples": cfg["iw_samples"],
        "iw_chunk": cfg["iw_chunk"],
    }


@register_metric("PPL", higher_is_better=False)
def iw_perplexity(t: Totals, cfg: dict):
    return math.exp(-t.log_px / t.n_tokens), {**_iw(cfg), **_common(t, cfg)}


@register_metric("NLL", higher_is_better=False)
def iw_nll(t: Totals, cfg: dict):
    """-log p(x) per sentence, IW estimate (the quantity behind PPL, per sentence)."""
    return -t.log_px / t.n_examples, {**_iw(cfg), **_common(t, cfg)}


@register_metric("Recon", higher_is_better=False)
def reconstruction(t: Totals, cfg: dict):
    return t.recon_nll / t.n_examples, {"recon_samples": cfg["iw_samples"], **_common(t, cfg)}


def _layers(cfg: dict) -> dict:
    """Which latent groups a number covers (1-based), and why (`layers`)."""
    groups = cfg["groups"]
    return {"layers": cfg["layers"], "groups": [g + 1 for g in range(cfg["n_groups"])][groups]}


def kl_per_sentence(t: Totals, cfg: dict) -> torch.Tensor:
    """[N] each example's KL over the reported groups, reduced by `kl_reduction`."""
    kl = torch.cat(t.kl_groups)[:, cfg["groups"]]  # [N, G']
    return kl.sum(dim=1) if cfg["kl_reduction"] == "sum" else kl.mean(dim=1)


@register_metric("KL", higher_is_better=True)
def kl_divergence(t: Totals, cfg: dict):
    per_group = (torch.cat(t.kl_groups).sum(dim=0) / t.n_examples).tolist()
    return (
        kl_per_sentence(t, cfg).sum().item() / t.n_examples,
        {
            "kl_reduction": cfg["kl_reduction"],
            "over": "latent groups",
            **_layers(cfg),
            **_common(t, cfg),
        },
        {"per_group": per_group},
    )


@register_metric("ELBO", higher_is_better=False)
def negative_elbo(t: Totals, cfg: dict):
    value = (t.recon_nll + kl_per_sentence(t, cfg).sum().item()) / t.n_examples
    return value, {
        "reported_as": "-ELBO per sentence",
        "kl_reduction": cfg["kl_reduction"],
        "recon_samples": cfg["iw_samples"],
        **_layers(cfg),
        **_common(t, cfg),
    }


def per_sentence(t: Totals, cfg: dict) -> dict[str, list[float]]:
    """Each test sentence's -log p(x) (IW), -ELBO and KL (the reported layers, `kl_reduction`)
    and target tokens, in batch order: what the per-sentence comparisons resample."""
    recon = torch.cat(t.per_sentence["recon_nll"])
    kl = kl_per_sentence(t, cfg)
    return {
        "nll": (-torch.cat(t.per_sentence["log_px"])).tolist(),
        "elbo": (recon + kl).tolist(),
        "kl": kl.tolist(),
        "n_tokens": torch.cat(t.per_sentence["n_tokens"]).tolist(),
    }


@register_metric("MI", higher_is_better=True)
def mutual_information(t: Totals, cfg: dict, reduction: str = "total"):
    """The sum of the chain-rule terms I(x; z_g | z_<g) over the reported groups (all: I(x; z))
    ("total") or their mean ("mean"), with the per-group terms and the prefix values
    I(x; z_<=g) as details."""
    prefix = t.mi_prefix
    per_group = [b - a for a, b in zip([0.0] + prefix[:-1], prefix, strict=True)]
    reported = per_group[cfg["groups"]]
    value = math.fsum(reported) if reduction == "total" else math.fsum(reported) / len(reported)
    settings = {
        "mi_estimator": MI_ESTIMATOR,
        "mi_samples": cfg["mi_samples"],
        "mi_chunk": cfg["mi_chunk"],
        "reduction": {
            "total": "sum of I(x; z_g | z_<g) over the reported groups (all: I(x; z))",
            "mean": "mean of the per-group chain-rule terms I(x; z_g | z_<g) over the reported groups",
        }[reduction],
        **_layers(cfg),
        **_common(t, cfg),
    }
    details = {"per_group": per_group, "prefix": prefix, "per_group_term": "I(x; z_g | z_<g)"}
    return value, settings, details


@register_metric("AU", higher_is_better=True)
def active_units(t: Totals, cfg: dict, n_groups: int, latent_size: int, threshold: float):
    means = torch.cat(t.posterior_means)  # [N, D]
    if means.shape[1] != n_groups * latent_size:
        raise ValueError(f"posterior_mean has {means.shape[1]} dims, expected {n_groups} x {latent_size}")
    variance = means.var(dim=0, unbiased=True).view(n_groups, latent_size)
    per_group = (variance >= threshold).sum(dim=1)
    settings = {
        "au_threshold": threshold,
        "statistic": "Var_x(E_q[z]) >= threshold, unbiased variance",
        "reduction": "count per group, mean over the reported groups",
        "n_groups": n_groups,
        "latent_size": latent_size,
        **_layers(cfg),
        **_common(t, cfg),
    }
    reported = per_group[cfg["groups"]]
    return reported.double().mean().item(), settings, {"per_group": per_group.tolist(), "total": int(reported.sum())}


# -----------------------------------------------------------------------------
# the entry point


@contextlib.contextmanager
def evaluation_mode(model, seed: int):
    """Eval mode, no gradients, and a seeded RNG that leaves the caller's RNG state untouched."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        if was_training:
            model.train()


def representation_metrics(
    model,
    batches,
    settings: dict | None = None,
    token_budget: int | None = None,
    penalised_groups: slice = slice(None),
    sentences: dict | None = None,
) -> dict[str, MetricValue]:
    """IW-PPL, ELBO, KL, MI, AU (and NLL, Recon, the other KL reduction, AU at extra
    thresholds) of `model` on `batches`: an iterable of whatever the model's collate function
    returns (materialised as a list). Inside a data-parallel run the ranks share the work
    and every rank returns the numbers of one process. `token_budget` caps the tokens of each
    scoring call (`scored_log_likelihood`): memory, not the numbers. `penalised_groups`: the
    latent groups the model's training loss penalises, reported under `layers: penalised`.
    `sentences`, a dict, receives the per-sentence values (`per_sentence`).
    A model without latent variables (n_groups == 0) gets its exact PPL and NLL only."""
    cfg = {**DEFAULTS, **(settings or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown representation settings: {sorted(unknown)}")
    if cfg["kl_reduction"] not in KL_REDUCTIONS:
        raise ValueError(f"kl_reduction must be one of {KL_REDUCTIONS}")
    if cfg["layers"] not in LAYERS:
        raise ValueError(f"layers must be one of {LAYERS}, got {cfg['layers']!r}")
    cfg["n_groups"] = model.n_groups
    cfg["groups"] = penalised_groups if cfg["layers"] == "penalised" else slice(None)
    if not 1 <= cfg["mi_samples"] <= cfg["iw_samples"]:
        raise ValueError("mi_samples reuses importance samples: need 1 <= mi_samples <= iw_samples")
    batches = list(batches)
    cfg["no_latent"] = model.n_groups == 0
    if cfg["no_latent"]:  # a plain LM: one "sample" gives log p(x) exactly; nothing latent to measure
        cfg.update(iw_samples=1, iw_chunk=1, mi_samples=1)
        with evaluation_mode(model, cfg["seed"]):
            t = first_pass(model, batches, cfg, token_budget)
        if sentences is not None:
            sentences.update(
                nll=(-torch.cat(t.per_sentence["log_px"])).tolist(),
                n_tokens=torch.cat(t.per_sentence["n_tokens"]).tolist(),
            )
        return {name: metric_value(name, *fn(t, cfg)) for name, fn in [("PPL", iw_perplexity), ("NLL", iw_nll)]}

    with evaluation_mode(model, cfg["seed"]):
        t = first_pass(model, batches, cfg, token_budget)
        z, log_q_prefix = torch.cat(t.mi_z), torch.cat(t.mi_log_q).cumsum(-1)  # [M, D], [M, G]
        log_q_agg = aggregate_log_posterior(model, batches, z, cfg["mi_chunk"])
        t.mi_prefix = (log_q_prefix.to(log_q_agg.device) - log_q_agg).mean(dim=0).tolist()

    out = {
        name: metric_value(name, *fn(t, cfg))
        for name, fn in [
            ("PPL", iw_perplexity),
            ("NLL", iw_nll),
            ("ELBO", negative_elbo),
            ("KL", kl_divergence),
            ("Recon", reconstruction),
            ("MI", mutual_information),
        ]
    }
    other = "mean" if cfg["kl_reduction"] == "sum" else "sum"
    other_cfg = {**cfg, "kl_reduction": other}
    out[f"KL_{other}_over_layers"] = metric_value("KL", *kl_divergence(t, other_cfg))
    out[f"ELBO_{other}_over_layers"] = metric_value("ELBO", *negative_elbo(t, other_cfg))
    out["MI_mean_over_layers"] = metric_value("MI", *mutual_information(t, cfg, "mean"))
    shape = (model.n_groups, model.latent_size)
    out["AU"] = metric_value("AU", *active_units(t, cfg, *shape, cfg["au_threshold"]))
    for threshold in cfg["au_extra_thresholds"]:
        out[f"AU@{threshold:g}"] = metric_value("AU", *active_units(t, cfg, *shape, threshold))
    every = list(range(model.n_groups))
    if every[cfg["groups"]] != every:  # a subset reported: the whole latent's numbers beside
        all_cfg = {**cfg, "layers": "all", "groups": slice(None)}
        out["KL_all_layers"] = metric_value("KL", *kl_divergence(t, all_cfg))
        out["ELBO_all_layers"] = metric_value("ELBO", *negative_elbo(t, all_cfg))
        out["MI_all_layers"] = metric_value("MI", *mutual_information(t, all_cfg))
        out["AU_all_layers"] = metric_value("AU", *active_units(t, all_cfg, *shape, cfg["au_threshold"]))
    if sentences is not None:
        sentences.update(per_sentence(t, cfg))
    return out
