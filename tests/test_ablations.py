"""DELLA's switches (Table 4, Fig. 2), the training tricks (Table 5), decoding with a repetition
penalty, reconstruction and interpolation: each changes exactly what it names."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, RepetitionPenaltyLogitsProcessor

from della.models.della_path import LowRankFusion
from della.models.latent import GaussianChain
from della.models.vae import TransformerVAE, VAEConfig, count_parameters
from della.run.generate import interpolate, interpolated_latents, reconstruct

from conftest import tiny_corpus

GREEDY = {"strategy": "greedy", "max_new_tokens": 6}


def della(dirs, kind="causal", conditional=False, settings=None, **extra):
    torch.manual_seed(0)
    config = VAEConfig(
        path="della",
        decoder=str(dirs[kind]),
        decoder_kind=kind,
        conditional=conditional,
        latent_size=8,
        path_settings=settings or {},
        **extra,
    )
    return TransformerVAE(config).eval()


def value_outputs(model, batch, z):
    """Per decoder layer: (its value projection's output, that projection applied afresh to the
    same input, hooks bypassed), in one teacher-forced pass with latents z."""
    captured = []
    handles = [
        module.register_forward_hook(
            lambda m, i, o, span=span: captured.append((o[..., span], m.forward(i[0])[..., span]))
        )
        for module, span in model.decoder.value_projections()
    ]
    try:
        model._token_log_probs(batch, z)
    finally:
        for handle in handles:
            handle.remove()
    return captured


# --------------------------------------------------------------------------------------------
# Injection disabled: the plain backbone
# --------------------------------------------------------------------------------------------
def test_without_latent_della_is_gpt2(tiny_backbones):
    model = della(tiny_backbones)
    batch = model.collator(tiny_corpus(3))
    ids, mask = batch["dec_ids"], batch["dec_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ours = model._decode(ids, mask, None, model._start(None, 3, "cpu")[0], None, positions)
    plain = AutoModelForCausalLM.from_pretrained(tiny_backbones["causal"]).eval()
    theirs = plain(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    assert torch.allclose(ours[mask.bool()], theirs[mask.bool()], atol=1e-5)


def test_without_latent_della_is_bart(tiny_backbones):
    model = della(tiny_backbones, "seq2seq", conditional=True)
    batch = model.collator(tiny_corpus(3, conditional=True))
    ids, mask = batch["dec_ids"], batch["dec_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ours = model._decode(ids, mask, None, model._start(None, 3, "cpu")[0], model._source(batch), positions)
    plain = AutoModelForSeq2SeqLM.from_pretrained(tiny_backbones["seq2seq"]).eval()
    theirs = plain(
        input_ids=batch["src_ids"], attention_mask=batch["src_mask"], decoder_input_ids=ids, decoder_attention_mask=mask
    ).logits
    assert torch.allclose(ours[mask.bool()], theirs[mask.bool()], atol=1e-5)


# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chained", [True, False])
def test_prior_of_z2_depends_on_z1_only_with_the_chain(chained):
    torch.manual_seed(0)
    chain = GaussianChain(3, 4, 5, conditional=False, first_prior="standard", chained=chained)
    z = torch.randn(2, 3, 4)
    changed = z.clone()
    changed[:, 0] += 1.0
    before, after = chain(2, z=z).log_p, chain(2, z=changed).log_p
    # changing z_1 changes p(z_2 | z_1) (and, through h_2, p(z_3 | z_<3)) only along the chain
    assert torch.equal(before[:, 1], after[:, 1]) == torch.equal(before[:, 2], after[:, 2]) == (not chained)
    if not chained:  # every group's prior is N(0, I), as the first one's
        standard = GaussianChain(1, 4, 5, conditional=False, first_prior="standard")
        for g in range(3):
            assert torch.allclose(after[:, g], standard(2, z=changed[:, g : g + 1]).log_p[:, 0])
        assert len(chain.w_h) == len(chain.w_z) == len(chain.prior_net) == 0


def test_independent_z_is_sampled_independently_from_the_posterior():
    torch.manual_seed(0)
    chain = GaussianChain(2, 4, 5, conditional=False, first_prior="standard", chained=False)
    xs = torch.randn(3, 2, 5)
    z = chain(3, xs).z
    changed = z.clone()
    changed[:, 0] += 1.0
    # q(z_2 | x) does not move with z_1
    assert torch.equal(chain(3, xs, z=z).log_q[:, 1], chain(3, xs, z=changed).log_q[:, 1])


def test_gradients_reach_every_latent_parameter(tiny_backbones):
    model = della(tiny_backbones, pooling="attention").train()
    batch = model.collator(tiny_corpus(4))
    model.loss(batch, beta=1.0, kl_threshold=0.0, kl_reduction="sum")["loss"].backward()
    for module in (model.chain, model.path, model.pools):
        for name, parameter in module.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_batch_of_one_and_batch_of_many_agree(tiny_backbones):
    model = della(tiny_backbones)
    records = tiny_corpus(4)
    batch = model.collator(records)
    z = torch.randn(4, 2, model.n_groups * model.latent_size)
    many = model.log_likelihood(batch, z)
    many_mean = model.posterior_mean(model.encode(batch))
    for i, record in enumerate(records):
        alone = model.collator([record])
        assert torch.allclose(model.log_likelihood(alone, z[i : i + 1]), many[i : i + 1], atol=1e-4)
        assert torch.allclose(model.posterior_mean(model.encode(alone)), many_mean[i : i + 1], atol=1e-5)


# --------------------------------------------------------------------------------------------
# Table 4 switches and the latent layer range (Fig. 2)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kl_layers", ["all", "first", "last"])
def test_kl_layers_selects_the_kl_terms_of_the_loss(tiny_backbones, kl_layers):
    model = della(tiny_backbones, kl_layers=kl_layers)
    out = model.loss(model.collator(tiny_corpus(4)), beta=2.0, kl_threshold=0.0, kl_reduction="sum")
    per_group = out["kl_per_group"]
    expected = {"all": per_group.sum(), "first": per_group[0], "last": per_group[-1]}[kl_layers]
    # at the loss's float32 precision (a difference of two ~170-nat terms cancels digits)
    assert torch.allclose(out["loss"], out["reconstruction"] + 2.0 * expected, rtol=1e-6, atol=1e-5)
    assert torch.allclose(out["kl"], per_group.sum(), atol=1e-5)  # the reported KL stays the full one


def test_without_layerwise_latents_one_z_enters_every_layer(tiny_backbones):
    model = della(tiny_backbones, layerwise=False)
    layers = model.decoder.n_layers
    assert model.n_groups == 1 and len(model.path.fusions) == layers
    batch = model.collator(tiny_corpus(2))
    # the one group is inferred from the last encoder layer
    states = model.encoder.layer_states(batch["x_ids"], batch["x_mask"])
    assert torch.equal(model.encode(batch).xs[:, 0], states[-1][:, 0])
    model.train()
    model.loss(batch, beta=1.0, kl_threshold=0.0, kl_reduction="sum")["loss"].backward()
    for fusion in model.path.fusions:  # every layer's fusion receives the latent
        assert all(f.weight.grad.abs().sum() > 0 for f in fusion.latent_factors)


@pytest.mark.parametrize("start,end", [(2, 2), (1, 1)])
def test_layers_outside_latent_layers_run_as_the_plain_backbone(tiny_backbones, start, end):
    model = della(tiny_backbones, latent_layers={"start": start, "end": end})
    inside = range(start - 1, end)
    assert model.n_groups == len(inside) == len(model.path.fusions)
    batch = model.collator(tiny_corpus(3))
    states = model.encoder.layer_states(batch["x_ids"], batch["x_mask"])
    assert torch.equal(model.encode(batch).xs[:, 0], states[start - 1][:, 0])  # encoder layer l -> z_l
    z = model.chain(3, None).z
    for layer, (used, plain) in enumerate(value_outputs(model, batch, z)):
        assert torch.equal(used, plain) == (layer not in inside), layer
    with pytest.raises(ValueError, match="latent_layers"):
        della(tiny_backbones, latent_layers={"start": 2, "end": 3})


def test_fusion_memory_puts_z_l_in_layer_l_memory_without_a_tensor_product(tiny_backbones):
    model = della(tiny_backbones, settings={"fusion": "memory"})
    assert not any(isinstance(m, LowRankFusion) for m in model.modules())
    batch = model.collator(tiny_corpus(3))
    z = model.chain(3, None).z
    for used, plain in value_outputs(model, batch, z):  # no value is fused
        assert torch.equal(used, plain)
    memory = model.path.memory(z)
    changed = z.clone()
    changed[:, 0] += 1.0
    moved = model.path.memory(changed)
    assert not torch.equal(memory[0][0], moved[0][0])  # z_1 is layer 1's key ...
    assert all(torch.equal(a, b) for a, b in zip(memory[1], moved[1], strict=True))  # ... and only layer 1's
    ll = model.log_likelihood(batch, model._flat(z)[:, None])
    assert not torch.allclose(ll, model.log_likelihood(batch, model._flat(changed)[:, None]))
    with pytest.raises(ValueError, match="every decoder layer"):
        della(tiny_backbones, settings={"fusion": "memory"}, latent_layers={"start": 2, "end": None})


@pytest.mark.parametrize("rank_sum", ["before_product", "after_product"])
def test_fused_and_per_factor_fusion_agree_in_outputs_and_gradients(rank_sum):
    torch.manual_seed(0)
    fusion = LowRankFusion(6, 3, rank=4, rank_sum=rank_sum)
    values, z = torch.randn(2, 5, 6), torch.randn(2, 3)
    value_parts = torch.stack([f(values) for f in fusion.value_factors])
    latent_parts = torch.stack([f(z) for f in fusion.latent_factors])[:, :, None, :]
    if rank_sum == "before_product":
        per_factor = value_parts.sum(0) * latent_parts.sum(0)
    else:
        per_factor = (value_parts * latent_parts).sum(0)
    fused = fusion(values, z)
    assert torch.allclose(fused, per_factor, atol=1e-6)
    weights = torch.randn_like(fused)
    grads_fused = torch.autograd.grad((fused * weights).sum(), list(fusion.parameters()))
    grads_factor = torch.autograd.grad((per_factor * weights).sum(), list(fusion.parameters()))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads_fused, grads_factor, strict=True))


# --------------------------------------------------------------------------------------------
# factor_storage: summed, the r factor pairs stored as their sums
# --------------------------------------------------------------------------------------------
SUMMED = {"factor_storage": "summed"}


def factor_sums(fusion) -> list[torch.Tensor]:
    """S_v, its bias, S_z, its bias of a factor-storage fusion, added in factor order as its forward adds them."""
    return [
        sum((getattr(f, name) for f in factors[1:]), getattr(factors[0], name))
        for factors in (fusion.value_factors, fusion.latent_factors)
        for name in ("weight", "bias")
    ]


def stored_sums(fusion) -> list[torch.Tensor]:
    return [fusion.value_weight, fusion.value_bias, fusion.latent_weight, fusion.latent_bias]


def test_every_parameter_has_a_gradient_of_its_own(tiny_backbones):
    """No two .grad tensors share storage (the factors' did, when their sum was stack + sum), so an
    in-place change of the gradients (clipping, accumulation, the fp16 scaler's unscaling) applies
    to each parameter once."""
    model = della(tiny_backbones).train()
    model.loss(model.collator(tiny_corpus(4)), beta=1.0, kl_threshold=0.0, kl_reduction="sum")["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len({g.untyped_storage().data_ptr() for g in grads}) == len(grads)
    before = [g.clone() for g in grads]
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
    assert norm > 1e-3  # clipping is active
    assert all(
        torch.allclose(g, b * (1e-3 / (norm + 1e-6)), rtol=1e-5, atol=0) for g, b in zip(grads, before, strict=True)
    )


def test_summed_storage_starts_as_the_sum_of_the_factors_with_the_same_outputs(tiny_backbones):
    factors, summed = della(tiny_backbones), della(tiny_backbones, settings=SUMMED)
    for by_factor, by_sum in zip(factors.path.fusions, summed.path.fusions, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(factor_sums(by_factor), stored_sums(by_sum), strict=True))
    # the same random draws: every other parameter (the chain, built and initialised after the path) is equal
    a, b = factors.state_dict(), summed.state_dict()
    others = {name for name in a if ".fusions." not in name}
    assert others == {name for name in b if ".fusions." not in name}
    assert all(torch.equal(a[name], b[name]) for name in others)
    assert not any("factors" in name for name in b)
    batch = factors.collator(tiny_corpus(3))
    z = factors._flat(factors.chain(3, None).z)[:, None]
    assert torch.equal(factors.log_likelihood(batch, z), summed.log_likelihood(batch, z))
    # a quarter of the fusion parameters stored, standing for the paper's count
    stored, paper = count_parameters(summed), count_parameters(factors)
    assert 4 * stored["latent_path"] == paper["latent_path"] and stored["total"] < paper["total"]
    assert stored["paper_total"] == paper["paper_total"] == paper["total"]


def test_summed_storage_needs_the_sum_before_the_product(tiny_backbones):
    with pytest.raises(ValueError, match="factor_storage: summed .* rank_sum: after_product"):
        della(tiny_backbones, settings={**SUMMED, "rank_sum": "after_product"})
    with pytest.raises(ValueError, match="factor_storage must be 'factors' or 'summed', got 'sums'"):
        della(tiny_backbones, settings={"factor_storage": "sums"})


def test_summed_storage_trains_as_the_factors(tiny_backbones, tmp_path):
    """AdamW with weight decay, active gradient clipping, a warm-up schedule, two accumulated
    batches, and (summed) a stop and resume: the same losses and the same sums as the factors."""
    import json
    from dataclasses import replace

    from della.run.train import TrainSettings, train

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(32)))
    settings = TrainSettings(
        batch_size=4,
        grad_accumulation_steps=2,
        learning_rate=3e-3,
        max_steps=6,
        warmup_steps=2,
        weight_decay=0.5,
        grad_clip=0.05,
        log_every=1,
        beta_schedule="constant",
    )
    factors_config = VAEConfig(
        path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=8
    )
    summed_config = replace(factors_config, path_settings=SUMMED)
    factors = TransformerVAE.load(train(factors_config, settings, data, tmp_path / "factors", seed=0))
    assert train(summed_config, settings, data, tmp_path / "summed", seed=0, stop_after_steps=3) is None
    summed = TransformerVAE.load(train(summed_config, settings, data, tmp_path / "summed", seed=0))

    def log(run):
        return [json.loads(line) for line in (tmp_path / run / "train_log.jsonl").read_text().splitlines()]

    assert [row["loss"] for row in log("summed")] == pytest.approx([row["loss"] for row in log("factors")], rel=1e-5)
    assert [row["lr"] for row in log("summed")] == [row["lr"] for row in log("factors")]
    for by_factor, by_sum in zip(factors.path.fusions, summed.path.fusions, strict=True):
        for a, b in zip(factor_sums(by_factor), stored_sums(by_sum), strict=True):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    a, b = factors.state_dict(), summed.state_dict()
    for name in (name for name in a if ".fusions." not in name):
        assert torch.allclose(a[name], b[name], rtol=1e-5, atol=1e-7), name
    # the comparison can fail: clipping was active (without it the sums end elsewhere)
    unclipped = TransformerVAE.load(
        train(factors_config, replace(settings, grad_clip=1e9), data, tmp_path / "u", seed=0)
    )
    assert not torch.allclose(
        factor_sums(unclipped.path.fusions[0])[0], factor_sums(factors.path.fusions[0])[0], rtol=1e-5, atol=1e-7
    )


# --------------------------------------------------------------------------------------------
# Training tricks (Table 5)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["della", "memory"])
def test_bow_loss_is_the_official_bag_of_words_loss(tiny_backbones, path):
    torch.manual_seed(0)
    config = VAEConfig(
        path=path,
        decoder=str(tiny_backbones["causal"]),
        decoder_kind="causal",
        conditional=False,
        latent_size=8,
        bow_weight=0.5,
    )
    model = TransformerVAE(config).eval()
    batch = model.collator(tiny_corpus(3))
    z = model.chain(3, None).z
    # the official code: the bag logits, repeated at every position, scored by cross-entropy
    logits = model.decoder.model.lm_head(model.bow_head(z[:, -1]))
    labels = batch["labels"]
    repeated = logits[:, None].expand(-1, labels.shape[1], -1)
    expected = torch.nn.functional.cross_entropy(
        repeated.transpose(1, 2), labels, ignore_index=-100, reduction="none"
    ).sum(-1)
    assert torch.allclose(model.bow_loss(batch, z), expected, atol=1e-4)
    out = model.loss(batch, beta=1.0, kl_threshold=0.0, kl_reduction="sum")
    assert torch.allclose(out["loss"], out["reconstruction"] + out["kl"] + 0.5 * out["bow"], atol=1e-4)


def test_bn_vae_fixes_the_batch_statistics_of_the_posterior_means():
    torch.manual_seed(0)
    gamma = 0.6
    chain = GaussianChain(3, 4, 5, conditional=False, first_prior="standard", bn_gamma=gamma).train()
    with torch.no_grad():
        chain.posterior_mean_shift.fill_(0.25)
    mu = chain(64, torch.randn(64, 3, 5) * 3 + 1).posterior_mu  # [N, G, P]
    assert torch.allclose(mu.mean(0), torch.full((3, 4), 0.25), atol=1e-5)
    assert torch.allclose(mu.var(0, unbiased=False).sqrt(), torch.full((3, 4), gamma), atol=1e-3)
    # evaluation normalises with the running statistics: one row alone gets its batch value
    chain.eval()
    xs = torch.randn(4, 3, 5)
    assert torch.allclose(chain(1, xs[:1], sample=False).posterior_mu, chain(4, xs, sample=False).posterior_mu[:1])


def test_tricks_need_a_latent(tiny_backbones):
    with pytest.raises(ValueError, match="no latent"):
        TransformerVAE(
            VAEConfig(
                path="none",
                decoder=str(tiny_backbones["causal"]),
                decoder_kind="causal",
                conditional=False,
                bow_weight=0.1,
            )
        )


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------
def test_greedy_decoding_with_repetition_penalty_follows_hf(tiny_backbones):
    """Greedy decoding with a penalty equals a step-by-step teacher-forced reference that applies
    HF's processor to the full token history (prompt included)."""
    model = della(tiny_backbones)
    z = model.chain(1, None, generator=torch.Generator().manual_seed(0)).z
    decoding = {**GREEDY, "repetition_penalty": 3.0}
    ours = model.decode(z, [None], decoding, torch.Generator())
    history = [model.bos]
    processor = RepetitionPenaltyLogitsProcessor(3.0)
    for _ in range(decoding["max_new_tokens"]):
        ids = torch.tensor([history])
        logits = model._decode(
            ids, torch.ones_like(ids), z, model._start(z, 1, "cpu")[0], None, torch.arange(len(history))[None]
        )[:, -1]
        token = int(processor(ids, logits).argmax())
        history.append(token)
        if token == model.eos:
            break
    expected = model.decoder_tokenizer.decode([t for t in history[1:] if t != model.eos], skip_special_tokens=True)
    assert ours == [expected.strip()]
    assert ours != model.decode(z, [None], GREEDY, torch.Generator()) or len(set(history)) == len(history)


# At the tiny backbones' initialisation the next-token distribution is nearly flat: sampling at
# temperature 1 rarely draws a token that was already there, whatever the penalty. At 0.1 it
# keeps repeating the likeliest token, as greedy decoding does, and the penalty has work to do.
@pytest.mark.parametrize(
    "strategy",
    [
        {"strategy": "beam", "num_beams": 3, "length_penalty": 1.0},
        {"strategy": "sample", "temperature": 0.1, "top_p": 0.9},
    ],
)
def test_repetition_penalty_reaches_beam_search_and_sampling(tiny_backbones, strategy):
    model = della(tiny_backbones)
    decoding = {**strategy, "max_new_tokens": 8}
    z = model.chain(4, None, generator=torch.Generator().manual_seed(0)).z
    plain = model.decode(z, [None] * 4, {**decoding, "repetition_penalty": 1.0}, torch.Generator().manual_seed(1))
    default = model.decode(z, [None] * 4, decoding, torch.Generator().manual_seed(1))
    penalised = model.decode(z, [None] * 4, {**decoding, "repetition_penalty": 50.0}, torch.Generator().manual_seed(1))
    assert plain == default and penalised != plain


# --------------------------------------------------------------------------------------------
# Reconstruction and interpolation (Fig. 3, App. A.6)
# --------------------------------------------------------------------------------------------
def test_interpolation_ends_are_the_reconstructions(tiny_backbones, tmp_path):
    model = della(tiny_backbones)
    first, second = (r["text"] for r in tiny_corpus(2, seed=3))
    z = interpolated_latents(model, first, second, [1.0, 0.5, 0.0], posterior="mean")
    ends = model.posterior_latents([first, second])
    assert torch.allclose(z[0], ends[0]) and torch.allclose(z[2], ends[1])
    assert torch.allclose(z[1], (ends[0] + ends[1]) / 2)  # per layer, tau z^1 + (1 - tau) z^2
    model.save(tmp_path / "run" / "model")
    texts = interpolate(tmp_path / "run", first, second, [1.0, 0.0], GREEDY, seed=0, posterior="mean")
    assert texts == reconstruct(model, [first, second], GREEDY, seed=0)  # from a run directory too
    # the paper's default draws z^1, z^2 from the posteriors (seeded)
    drawn = interpolated_latents(model, first, second, [1.0, 0.0], generator=torch.Generator().manual_seed(4))
    again = interpolated_latents(model, first, second, [1.0, 0.0], generator=torch.Generator().manual_seed(4))
    assert torch.equal(drawn, again) and not torch.allclose(drawn, z[[0, 2]])


def test_reconstruction_of_a_conditional_model_uses_its_source(tiny_backbones):
    model = della(tiny_backbones, "seq2seq", conditional=True)
    record = tiny_corpus(2, conditional=True)[0]
    texts = interpolate(
        model, record["target"], record["source"], [1.0], GREEDY, seed=0, source=record["source"], posterior="mean"
    )
    assert texts == reconstruct(model, [record["target"]], GREEDY, seed=0, sources=[record["source"]])


# --------------------------------------------------------------------------------------------
# Parameter count
# --------------------------------------------------------------------------------------------
def test_parameter_count_adds_up(tiny_backbones):
    model = della(tiny_backbones, settings={"rank": 2})
    counts = count_parameters(model)
    h, p, layers = model.decoder.hidden_size, model.latent_size, model.decoder.n_layers
    fusion = 2 * (h * h + h) + 2 * (p * h + h)
    # posteriors; W_z into groups 2.., W_h into groups 3.., priors of groups 2..
    chain = layers * ((p + h) * 2 * p + 2 * p) + (layers - 1) * (p * p + p * 2 * p + 2 * p) + (layers - 2) * p * p
    assert counts["latent_path"] == layers * fusion and counts["chain"] == chain
    plain = sum(t.numel() for t in AutoModelForCausalLM.from_pretrained(tiny_backbones["causal"]).parameters())
    assert counts["backbone"] == plain
    assert counts["total"] == plain + layers * fusion + chain


def test_count_parameters_command_prints_the_configuration_count(tiny_backbones, capsys):
    import json

    from della.cli import main

    settings = {
        "model": {
            "path": "della",
            "latent_size": 8,
            "pooling": "attention",
            "first_prior": "standard",
            "settings": {"rank": 2},
            "latent_layers": {"start": 2, "end": None},
        },
        "decoder": {"name_or_path": str(tiny_backbones["causal"]), "kind": "causal"},
        "encoder": None,
        "conditional": False,
        "max_source_tokens": 0,
        "max_target_tokens": 16,
        "training": {"bow_weight": 0.2, "bn_vae_gamma": 0.5},
    }
    main(["count-parameters", "--settings", json.dumps(settings)])
    printed = dict(line.rsplit(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    config = VAEConfig.from_settings(settings).with_training(settings["training"])
    assert config.latent_layers == {"start": 2, "end": None} and config.bow_weight == 0.2 and config.bn_vae_gamma == 0.5
    counts = count_parameters(TransformerVAE(config))
    assert {name: int(value.replace(",", "")) for name, value in printed.items()} == counts
    assert counts["bow_head"] == 8 * 32 + 32 and counts["pooling"] == 32  # one latent layer of two


def test_training_tricks_travel_from_the_training_settings_to_the_saved_model(tiny_backbones, tmp_path):
    import json

    from della.run.train import TrainSettings, train

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(16)))
    settings = TrainSettings(batch_size=8, learning_rate=3e-3, max_steps=4, bow_weight=0.3, bn_vae_gamma=0.5)
    config = VAEConfig(
        path="della",
        decoder=str(tiny_backbones["causal"]),
        decoder_kind="causal",
        conditional=False,
        latent_size=8,
        chain=False,
        kl_layers="last",
    )
    model = TransformerVAE.load(train(config, settings, data, tmp_path / "run", seed=0))
    assert (model.config.bow_weight, model.config.bn_vae_gamma, model.config.chain) == (0.3, 0.5, False)
    assert model.bow_head is not None
    norm = model.chain.posterior_mean_norm[0]
    assert int(norm.num_batches_tracked) == 4  # the running statistics were trained and saved
    assert not torch.equal(norm.running_var, torch.ones_like(norm.running_var))
