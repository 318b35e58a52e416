"""The Transformer-VAE framework: every latent path on both backbone families."""

from __future__ import annotations

import math

import pytest
import torch

from della.models.latent import GaussianChain, gaussian_kl, gaussian_log_prob
from della.models.vae import TransformerVAE, VAEConfig
from della.run.batches import IGNORE_INDEX

from conftest import tiny_corpus

# (latent path, decoder kind, conditional, separate encoder)
CASES = [
    ("none", "causal", False, False),
    ("della", "causal", False, False),
    ("embedding", "causal", False, False),
    ("memory", "causal", False, False),
    ("softmax", "causal", False, False),
    ("optimus", "causal", False, True),
    ("della", "causal", True, False),
    ("memory", "causal", True, False),
    ("none", "seq2seq", True, False),
    ("della", "seq2seq", True, False),
    ("memory", "seq2seq", True, False),
    ("embedding", "seq2seq", True, False),
    ("softmax", "seq2seq", True, False),
]


def build(dirs, path, kind, conditional, separate_encoder, **extra):
    torch.manual_seed(0)
    config = VAEConfig(
        path=path,
        decoder=str(dirs[kind]),
        decoder_kind=kind,
        conditional=conditional,
        latent_size=8,
        encoder=str(dirs["encoder"]) if separate_encoder else None,
        **extra,
    )
    return TransformerVAE(config).eval()


def case_id(case):
    return "-".join(str(c) for c in case)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_incremental_decoding_matches_teacher_forcing(tiny_backbones, case):
    """Generation's cached step-by-step pass must give the logits of the full pass (Memory's
    cached key/values, DELLA's value hooks and positions included)."""
    model = build(tiny_backbones, *case)
    batch = model.collator(tiny_corpus(3, conditional=case[2]))
    ids, mask = batch["dec_ids"], batch["dec_mask"]
    z = model.chain(3, None, model._condition(batch)).z if model.n_groups else None
    source = model._source(batch)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache, prefix = model._start(z, 3, ids.device)
    full = model._decode(ids, torch.cat([prefix, mask], -1), z, cache, source, positions)
    cache, prefix = model._start(z, 3, ids.device)
    steps = []
    for t in range(ids.shape[1]):
        attention = torch.cat([prefix, mask[:, : t + 1]], -1)
        steps.append(model._decode(ids[:, t : t + 1], attention, z, cache, source, positions[:, t : t + 1]))
    stepwise = torch.cat(steps, 1)
    valid = mask.bool()
    assert torch.allclose(full[valid], stepwise[valid], atol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_latent_changes_the_output_only_where_it_should(tiny_backbones, case):
    model = build(tiny_backbones, *case)
    batch = model.collator(tiny_corpus(4, conditional=case[2]))
    enc_before = model.encode(batch).xs.clone()
    k = 2
    z, log_q = model.sample_posterior(model.encode(batch), k)
    assert z.shape == (4, k, model.n_groups * model.latent_size)
    ll = model.log_likelihood(batch, z)
    assert ll.shape == (4, k) and torch.isfinite(ll).all()
    # decoding with z must not leak into the (possibly weight-shared) encoder
    assert torch.equal(model.encode(batch).xs, enc_before)
    if model.n_groups:
        assert torch.allclose(model.log_posterior(model.encode(batch), z), log_q, atol=1e-4)
        # z must reach the decoder: log p(x|z) has a non-zero gradient in z (at the backbones'
        # initialisation scale the effect is small, so compare gradients, not values)
        probe = z.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model.log_likelihood(batch, probe).sum(), probe)
        assert grad.abs().max() > 0, "z has no effect on the decoder"
    else:
        assert torch.allclose(ll[:, 0], ll[:, 1]), "a model without latent must ignore z"


def test_token_log_probs_cover_exactly_the_target(tiny_backbones):
    model = build(tiny_backbones, "none", "causal", True, False)
    records = tiny_corpus(2, conditional=True)
    batch = model.collator(records)
    target_tokens = [len(model.decoder_tokenizer(r["target"], add_special_tokens=False)["input_ids"]) for r in records]
    assert model.num_target_tokens(batch).tolist() == [n + 1 for n in target_tokens]  # + </s>
    labels = batch["labels"][0]
    first = (labels != IGNORE_INDEX).nonzero()[0].item()
    source_len = len(model.decoder_tokenizer(records[0]["source"], add_special_tokens=False)["input_ids"])
    assert first == source_len + 1  # <s> source </s> | target: the first label predicts target[0]


def test_chain_kl_matches_monte_carlo_and_log_densities():
    torch.manual_seed(0)
    chain = GaussianChain(n_groups=3, latent_size=4, rep_size=5, conditional=False, first_prior="standard")
    xs = torch.randn(1, 3, 5).expand(20000, 3, 5)
    result = chain(20000, xs)
    # E_q[log q(z|x) - log p(z)] estimated by sampling equals the sum of the chain's KL terms
    monte_carlo = (result.log_q - result.log_p).sum(-1).mean()
    closed_form = result.kl.sum(-1).mean()
    assert abs(monte_carlo - closed_form) < 0.05 * max(1.0, closed_form.item())
    # first group's prior is N(0, I) exactly
    z1 = result.z[:, 0]
    assert torch.allclose(result.log_p[:, 0], gaussian_log_prob(z1, torch.zeros_like(z1), torch.zeros_like(z1)))


def test_gaussian_kl_closed_form():
    mu_q, lv_q = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.3]])
    mu_p, lv_p = torch.tensor([[0.0, 0.3]]), torch.tensor([[0.1, 0.4]])
    expected = sum(
        0.5 * (lp - lq + (math.exp(lq) + (mq - mp) ** 2) / math.exp(lp) - 1)
        for mq, lq, mp, lp in zip(mu_q[0].tolist(), lv_q[0].tolist(), mu_p[0].tolist(), lv_p[0].tolist(), strict=True)
    )
    assert gaussian_kl(mu_q, lv_q, mu_p, lv_p).item() == pytest.approx(expected, rel=1e-5)


def test_save_and_load_round_trip(tiny_backbones, tmp_path):
    model = build(tiny_backbones, "della", "causal", False, False)
    batch = model.collator(tiny_corpus(3))
    z = torch.randn(3, 1, model.n_groups * model.latent_size)
    before = model.log_likelihood(batch, z)
    model.save(tmp_path / "m")
    loaded = TransformerVAE.load(tmp_path / "m")
    assert torch.allclose(loaded.log_likelihood(batch, z), before, atol=1e-5)


def test_layerwise_path_needs_matching_layer_counts(tiny_backbones, tmp_path):
    from della.models.backbone import BackboneSize, create_backbone

    create_backbone("encoder", BackboneSize(3, 32, 4, 128), tiny_backbones["tokenizer"], tmp_path / "bert3", seed=0)
    with pytest.raises(ValueError, match="3 layers"):
        TransformerVAE(
            VAEConfig(
                path="della",
                decoder=str(tiny_backbones["causal"]),
                decoder_kind="causal",
                conditional=False,
                latent_size=8,
                encoder=str(tmp_path / "bert3"),
            )
        )


def test_generation_is_seeded_and_stops(tiny_backbones):
    model = build(tiny_backbones, "della", "causal", False, False)
    decoding = {"strategy": "sample", "temperature": 1.0, "top_k": 0, "top_p": 0.9, "max_new_tokens": 8}
    first = model.generate([None] * 4, decoding, torch.Generator().manual_seed(1))
    again = model.generate([None] * 4, decoding, torch.Generator().manual_seed(1))
    other = model.generate([None] * 4, decoding, torch.Generator().manual_seed(2))
    assert first == again and first != other and len(first) == 4


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_shared_encoder_weights_are_stored_once(tiny_backbones, kind):
    model = build(tiny_backbones, "della", kind, kind == "seq2seq", False)
    state = model.state_dict()
    backbone_tensors = sum(1 for _ in model.decoder.model.state_dict())
    assert sum(1 for name in state if name.startswith("decoder.")) == backbone_tensors
    assert not any(name.startswith(("encoder.", "separate_encoder.")) for name in state)


def test_attention_pooling_is_the_official_formula_and_ignores_padding(tiny_backbones):
    from transformers.activations import ACT2FN

    model = build(tiny_backbones, "della", "causal", False, False, pooling="attention")
    assert len(model.pools) == model.n_groups
    records = tiny_corpus(3)
    batch = model.collator(records)
    xs = model.encode(batch).xs  # [B, G, H]
    # the shortest row, padded inside the batch, must give the representation it has alone
    short = int(batch["x_mask"].sum(-1).argmin())
    assert batch["x_mask"][short].sum() < batch["x_mask"].shape[1], "the test needs a padded row"
    alone = model.collator(records[short : short + 1])
    states = model.encoder.layer_states(alone["x_ids"], alone["x_mask"])
    for layer, (pool, s) in enumerate(zip(model.pools, states, strict=True)):
        scores = ACT2FN["gelu_new"](s[0] @ pool.weight).softmax(-1)
        expected = (scores[:, None] * s[0]).sum(0)
        assert torch.allclose(xs[short, layer], expected, atol=1e-5)
    # the pooling weights are trained: the loss has a gradient in them
    model.train()
    model.loss(batch, beta=1.0, kl_threshold=0.0, kl_reduction="sum")["loss"].backward()
    assert all(pool.weight.grad.abs().sum() > 0 for pool in model.pools)


BEAM = {"strategy": "beam", "length_penalty": 1.0, "max_new_tokens": 6}


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[9]], ids=case_id)
def test_one_beam_is_greedy(tiny_backbones, case):
    model = build(tiny_backbones, *case)
    sources = [r.get("source") for r in tiny_corpus(3, conditional=case[2])]
    greedy = model.generate(sources, {"strategy": "greedy", "max_new_tokens": 6}, torch.Generator().manual_seed(3))
    beam = model.generate(sources, {**BEAM, "num_beams": 1}, torch.Generator().manual_seed(3))
    assert beam == greedy


def sequence_score(model, z, tokens, penalty):
    """sum log p(tokens | z) / len ** penalty, by teacher forcing (unconditional, causal)."""
    ids = torch.tensor([[model.bos] + tokens])
    batch = {"dec_ids": ids[:, :-1], "dec_mask": torch.ones_like(ids[:, :-1]), "labels": ids[:, 1:]}
    return model._token_log_probs(batch, z).sum().item() / len(tokens) ** penalty


def test_beam_search_finds_the_best_sequence_when_it_can_see_them_all(tiny_backbones):
    """With as many beams as the vocabulary and two steps, beam search is exhaustive: its
    result must score at least as well as every one- and two-token sequence."""
    model = build(tiny_backbones, "della", "causal", False, False)
    vocab = len(model.decoder_tokenizer)
    decoding = {"strategy": "beam", "num_beams": vocab, "length_penalty": 1.0, "max_new_tokens": 2}
    z = model.chain(1, None, generator=torch.Generator().manual_seed(0)).z
    (best,) = model.decode_tokens(z, [None], decoding, torch.Generator().manual_seed(0))
    best_score = sequence_score(model, z, best, 1.0)
    # every alternative: one token then </s> is covered by scoring all first tokens
    first = model._decode(
        torch.tensor([[model.bos]]),
        torch.ones(1, 1, dtype=torch.long),
        z,
        model._start(z, 1, "cpu")[0],
        None,
        torch.zeros(1, 1, dtype=torch.long),
    )[0, -1]
    logp_first = first.log_softmax(-1)
    assert best_score >= logp_first[model.eos].item() - 1e-4  # </s> immediately
    top_first = int(logp_first.argmax())
    for second in range(vocab):  # two-token sequences starting with the likeliest token
        assert best_score >= sequence_score(model, z, [top_first, second], 1.0) - 1e-4


@pytest.mark.parametrize("case", [CASES[1], CASES[5]], ids=case_id)  # DELLA (groups of 8) and Optimus (one)
def test_free_bits_per_dimension_and_per_group_against_a_hand_computation(tiny_backbones, case):
    """kl_threshold's two scopes (della/models/vae.py), checked element by element in plain Python:
    "dimension" (Optimus' dim_target_kl) adds each example's KL of each latent dimension only
    where it exceeds the threshold; "group" adds each example's KL of each group, at least the
    threshold. The threshold is the median dimension's KL, so some count and some do not."""
    model = build(tiny_backbones, *case)
    batch = model.collator(tiny_corpus(6))

    def loss(threshold, scope):
        torch.manual_seed(1)  # the same latent draws in every call
        return model.loss(batch, beta=1.0, kl_threshold=threshold, kl_reduction="sum", kl_threshold_scope=scope)

    torch.manual_seed(1)
    encoded = model.encode(batch)
    kl = model.chain(batch["dec_ids"].shape[0], encoded.xs, encoded.cs).kl_per_dimension.tolist()  # [B][G][P]
    threshold = sorted(k for row in kl for group in row for k in group)[len(kl) * len(kl[0]) * len(kl[0][0]) // 2]
    raw = [math.fsum(k for group in row for k in group) for row in kl]
    by_dimension = [math.fsum(k for group in row for k in group if k > threshold) for row in kl]
    by_group = [math.fsum(max(math.fsum(group), threshold) for group in row) for row in kl]
    assert 0 < sum(by_dimension) < sum(raw)  # some dimensions below the threshold, some above
    for scope, expected in (("dimension", by_dimension), ("group", by_group)):
        base = loss(0.0, scope)
        assert base["kl"].item() == pytest.approx(sum(raw) / len(raw), rel=1e-5)  # the reported KL is never thresholded
        shift = (loss(threshold, scope)["loss"] - base["loss"]).item()
        assert shift == pytest.approx(sum(e - r for e, r in zip(expected, raw, strict=True)) / len(raw), abs=1e-4), (
            scope
        )
    with pytest.raises(ValueError, match="kl_threshold_scope must be"):
        loss(0.5, "layer")
