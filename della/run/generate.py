"""Generate samples from a trained model: z from the prior (p(z) or p(z|c)), then decode.

Unconditional datasets: `num_unconditional` samples. Conditional datasets: one output for each
of the first `max_conditional` test inputs, with the reference beside it. Batch i draws from a
generator seeded by (seed, i): its z, and the seed of the random stream transformers' generate()
samples tokens with (torch's global stream, forked for the call: della/models/decoding.py). In a
data-parallel run each rank generates every N-th batch and the rows are gathered in order, the
same rows as one process generates.

Also the library functions a figure rule uses: reconstruction from a sentence's posterior and
interpolation between two sentences' posteriors (Fig. 3, App. A.6).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm import tqdm

from della.io import atomic_write_json, atomic_write_jsonl
from della.models.vae import TransformerVAE
from della.run.batches import load_records
from della.run.distributed import derived_seed, gather_in_order, resolve_device, shard, world
from della.run.memory import AUTO, resolve_token_budget

# generation.device (and evaluation.device): where the model runs; "auto" is CUDA when available.
DEVICE_DEFAULT = "auto"


def seeded_generator(model: TransformerVAE, seed: int) -> torch.Generator:
    """A random stream on the model's device (z is drawn there; token sampling is seeded from it).
    CPU and CUDA streams differ: samples drawn on a GPU are not those drawn on the CPU."""
    return torch.Generator(device=model.device).manual_seed(seed)


def generate_samples(model: TransformerVAE, test_file: Path, settings: dict, seed: int) -> list[dict]:
    """`settings` is the `generation` config section; returns samples.jsonl rows (on every rank)."""
    conditional = model.config.conditional
    if conditional:
        records = load_records(test_file, settings["max_conditional"])
        sources = [r["source"] for r in records]
        references = [r["target"] for r in records]
    else:
        sources = [None] * settings["num_unconditional"]
        references = [None] * len(sources)
    size = settings["batch_size"]
    starts = range(0, len(sources), size)
    budget = resolve_token_budget(settings.get("token_budget", AUTO), model, "generation")
    print(
        f"greedy/beam generate() calls of at most {budget} tokens (generation.token_budget: "
        f"{settings.get('token_budget', AUTO)})",
        file=sys.stderr,
    )
    parts = []
    for i in tqdm(shard(len(starts)), desc="generate", file=sys.stderr, mininterval=5, disable=not world().main):
        generator = seeded_generator(model, derived_seed(seed, i))
        batch_sources = sources[starts[i] : starts[i] + size]
        parts.append((i, model.generate(batch_sources, settings["decoding"], generator, budget)))
    outputs = [text for part in gather_in_order(parts) for text in part]
    return [
        {"id": i, "source": s, "reference": r, "generated": g}
        for i, (s, r, g) in enumerate(zip(sources, references, outputs, strict=True))
    ]


def run(model_dir: Path, test_file: Path, settings: dict, seed: int, out_file: Path) -> None:
    torch.manual_seed(seed)
    model = load_model(model_dir, settings.get("device", DEVICE_DEFAULT), "generation.device")
    rows = generate_samples(model, test_file, settings, seed)
    if world().main:
        atomic_write_jsonl(out_file, rows)
        atomic_write_json(out_file.with_suffix(".settings.json"), {"generation": settings, "seed": seed})


def load_model(path: Path, device: str = DEVICE_DEFAULT, setting: str = "device") -> TransformerVAE:
    """A trained model from its directory or from its run directory (which holds `model/`), on
    the device the `device` setting names (`setting`: its name in errors)."""
    device = resolve_device(device, setting)  # before loading: a bad setting fails fast
    model = TransformerVAE.load(path / "model" if (path / "model" / "config.json").exists() else path)
    return model.to(device)


# Which latent of a sentence's posterior reconstruction and interpolation decode: a draw (App.
# A.6: "sample two groups of latent variables ... from posterior distributions") or the mean chain.
POSTERIOR_SAMPLE, POSTERIOR_MEAN = "sample", "mean"


def _posterior_latents(model, texts, sources, posterior: str, generator) -> torch.Tensor:
    if not model.n_groups:
        raise ValueError(f"model path {model.config.path!r} has no latent to reconstruct from")
    if posterior not in (POSTERIOR_SAMPLE, POSTERIOR_MEAN):
        raise ValueError(f"posterior must be {POSTERIOR_SAMPLE!r} or {POSTERIOR_MEAN!r}, got {posterior!r}")
    return model.posterior_latents(texts, sources, sample=posterior == POSTERIOR_SAMPLE, generator=generator)


def reconstruct(
    model: TransformerVAE,
    texts: list[str],
    decoding: dict,
    seed: int,
    sources: list[str | None] | None = None,
    posterior: str = POSTERIOR_MEAN,
) -> list[str]:
    """Decode each text from its posterior (given its source, for a CVAE)."""
    sources = [None] * len(texts) if sources is None else sources
    generator = seeded_generator(model, seed)
    z = _posterior_latents(model, texts, sources, posterior, generator)
    return model.decode(z, sources, decoding, generator)


def interpolated_latents(
    model: TransformerVAE,
    first: str,
    second: str,
    taus: list[float],
    source: str | None = None,
    posterior: str = POSTERIOR_SAMPLE,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """z_hat_l = tau z_l^1 + (1 - tau) z_l^2 for every layer l and tau, [len(taus), G, P], where
    z^1, z^2 come from the two sentences' posteriors (Fig. 3, App. A.6)."""
    ends = _posterior_latents(model, [first, second], [source, source], posterior, generator)  # [2, G, P]
    weights = torch.tensor(taus, dtype=ends.dtype, device=ends.device)[:, None, None]
    return weights * ends[0] + (1 - weights) * ends[1]


def interpolate(
    model: TransformerVAE | Path,
    first: str,
    second: str,
    taus: list[float],
    decoding: dict,
    seed: int,
    source: str | None = None,
    posterior: str = POSTERIOR_SAMPLE,
) -> list[str]:
    """One text per tau, decoded from the interpolation between the two sentences' posterior
    latents (tau = 1: the first sentence's, tau = 0: the second's). `model` may be a model or a
    (run or model) directory."""
    model = load_model(model) if isinstance(model, Path) else model
    generator = seeded_generator(model, seed)
    z = interpolated_latents(model, first, second, taus, source, posterior, generator)
    return model.decode(z, [source] * len(taus), decoding, generator)
