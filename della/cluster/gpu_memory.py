"""Peak accelerator memory of a job, estimated from the model's shape and the run's settings.

docs/cluster.md's GPU-memory table comes from here (`della-bench gpu-memory`), and the paper
config's `resources` follow it: each (dataset, model) run asks for a card at least as large as
its largest job needs. tests/test_gpu_memory.py checks every estimate against the allocations
measured (`measure_peak_bytes`) for the real training step, scoring call, generate() call and
feature pass at small sizes, so the formula cannot drift from the code it describes.

What a job holds at its peak, in elements of `element_bytes` (fp32: 4):
- training: weights, their gradients and AdamW's two moments (4 x parameters), the activations
  autograd saves for every transformer pass of the step (the posterior encoder over the target,
  the condition encoder, BART's encoder over the source, the decoder), and the logits with the
  log-softmax and gradient the cross-entropy keeps;
- scoring (IW-PPL / ELBO): weights and one call's rows x width tokens at
  `della.run.memory.scoring_bytes_per_token`, the rows capped by `evaluation.token_budget`;
- generation: weights, the key/value cache of rows x beams x (prompt + new tokens), and a step's
  logits; BART adds the encoded source and its cross-attention keys and values;
- feature models (MAUVE, BERTScore): the feature model's weights and one batch's forward.

Attention: an `eager` or CPU attention materialises the heads x length x length score matrix of
every layer (softmax, its dropout mask and output are saved for the backward pass); PyTorch's
fused `sdpa` kernels on a GPU (memory-efficient / flash, what transformers picks on CUDA) keep
only a log-sum-exp per query. The estimates take `attention` (MATERIALISED or FUSED); the test
suite can measure only the materialised case (CPU), the fused one is checked on a GPU by
benchmarks/gpu_check. The table gives both.
"""

from __future__ import annotations

from dataclasses import dataclass

from della.cluster.attempts import LOWER
from della.models.architectures import SEQ2SEQ
from della.run.memory import GIB, generation_bytes_per_token, scoring_bytes_per_token

MATERIALISED = "materialised"
FUSED = "fused"
ATTENTION_KINDS = (MATERIALISED, FUSED)

# Floats autograd saves per token per layer of a transformer block, in units of its width d and
# of its feed-forward width f (pre- or post-LayerNorm alike): the two LayerNorm inputs and
# outputs (4d), q, k, v (3d), the attention output and its projection's input (2d), two dropout
# masks (bytes: 0.5d), the MLP's first projection and activation (2f), and with an activation
# dropout (BART) its mask (0.25f); plus cross-attention (q, output, mask, LayerNorm input and
# output: 4.25d per target token; keys and values: 2d per source token).
SAVED_PER_WIDTH = 9.5
SAVED_PER_FFN = 2.0
FFN_DROPOUT_MASK = 0.25
CROSS_PER_TARGET_WIDTH = 4.25
CROSS_PER_SOURCE_WIDTH = 2.0
# DELLA's fusion (della/models/vae.py, `_value_hook`) keeps per decoder layer and token a copy of the
# values and the fused values.
FUSED_VALUES_PER_WIDTH = 2.0
# Floats per attention score with materialised attention: the scores, the softmax (saved), its
# dropout mask (a byte) and the dropped-out probabilities (saved).
SCORE_FLOATS_TRAINING = 3.25
# Floats per logit while the loss is computed and differentiated: the logits, the shifted copy
# cross-entropy reads, its log-softmax and the gradient flowing back.
LOGIT_FLOATS_TRAINING = 4.0
# Floats per logit a generation step holds: logits, log-probabilities, beam scores.
LOGIT_FLOATS_GENERATION = 3.0


@dataclass(frozen=True)
class Stack:
    """The shape of one transformer stack (GPT-2, BART's encoder or decoder, BERT)."""

    layers: int
    width: int
    heads: int
    ffn: int
    ffn_dropout: bool = False  # a dropout after the MLP's activation (BART's activation_dropout)

    def saved_floats(
        self, rows: int, tokens: int, source_tokens: int = 0, fused_values: bool = False, *, attention: str
    ) -> float:
        """Floats autograd saves for one pass of `rows` sequences of `tokens` (cross-attending to
        `source_tokens` when the stack is BART's decoder; fusing a latent into its values when
        `fused_values`)."""
        ffn_floats = SAVED_PER_FFN + (FFN_DROPOUT_MASK if self.ffn_dropout else 0.0)
        width_floats = SAVED_PER_WIDTH + (FUSED_VALUES_PER_WIDTH if fused_values else 0.0)
        per_layer = rows * tokens * (width_floats * self.width + ffn_floats * self.ffn)
        keys = tokens + source_tokens
        if attention == MATERIALISED:
            per_layer += SCORE_FLOATS_TRAINING * rows * self.heads * tokens * keys
        if source_tokens:
            per_layer += rows * (CROSS_PER_TARGET_WIDTH * tokens + CROSS_PER_SOURCE_WIDTH * source_tokens) * self.width
        return self.layers * per_layer

    def forward_floats(self, rows: int, tokens: int, attention: str) -> float:
        """Floats a no-grad pass holds at once: the residual stream, the widest layer's working
        set (f + 5d per token) and, materialised, one layer's score matrix (the softmax replaces
        it in place of a second copy)."""
        floats = rows * tokens * (2 * self.width + self.ffn + 5 * self.width)
        if attention == MATERIALISED:
            floats += rows * self.heads * tokens * tokens
        return floats


@dataclass(frozen=True)
class Job:
    """One job's peak, by component, in bytes."""

    components: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.components.values())

    def gib(self) -> float:
        return self.total / GIB


def check_attention(attention: str) -> None:
    if attention not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")


def training_peak(
    params: int,
    passes: list[tuple[Stack, int, int, int, bool]],
    decoder_tokens: int,
    vocab: int,
    rows: int,
    attention: str,
    element_bytes: int = 4,
) -> Job:
    """A training step: `passes` are (stack, rows, tokens, source_tokens, fused_values) of every
    transformer pass with gradients (`training_passes`); the loss reads `rows x decoder_tokens`
    logits over `vocab`."""
    check_attention(attention)
    return Job(
        {
            "weights": element_bytes * params,
            "gradients + AdamW": 3 * element_bytes * params,
            "activations": element_bytes
            * sum(stack.saved_floats(*shape, attention=attention) for stack, *shape in passes),
            "logits": element_bytes * LOGIT_FLOATS_TRAINING * rows * decoder_tokens * vocab,
        }
    )


def scoring_peak(
    params: int,
    decoder: Stack,
    vocab: int,
    rows: int,
    tokens: int,
    attention: str,
    source_tokens: int = 0,
    element_bytes: int = 4,
) -> Job:
    """One IW scoring call (no gradients): `rows` (batch x iw_chunk, or fewer under a token
    budget) sequences of `tokens`, BART's cross-attending to `source_tokens`. Its peak is the
    larger of two phases, each holding the key/value cache: a layer's working set, and the
    logits with their log-softmax (`della.run.memory.scoring_bytes_per_token`)."""
    check_attention(attention)
    cache = rows * tokens * 2 * decoder.layers * decoder.width
    layer_phase = element_bytes * (decoder.forward_floats(rows, tokens, attention) + cache)
    logits_phase = scoring_bytes_per_token(vocab, decoder.layers, decoder.width, element_bytes) * rows * tokens
    # the encoded source and its keys and values in every cross-attention layer
    source = element_bytes * rows * source_tokens * decoder.width * (1 + 2 * decoder.layers)
    return Job({"weights": element_bytes * params, "scoring": max(layer_phase, logits_phase) + source})


def generation_peak(
    params: int,
    decoder: Stack,
    vocab: int,
    rows: int,
    beams: int,
    prompt_tokens: int,
    new_tokens: int,
    attention: str,
    source: Stack | None = None,
    source_tokens: int = 0,
    element_bytes: int = 4,
) -> Job:
    """One generate() call: rows x beams sequences growing to prompt + new tokens (a cache of
    `della.run.memory.generation_bytes_per_token` each) and a step's logits; with a seq2seq `source`
    stack, the encoded source (per row and per beam) and its cross-attention keys and values per
    beam. The prompt's forward (the prefill, and BART's encoder pass) comes before the cache has
    grown: the peak is the larger of the two phases."""
    check_attention(attention)
    sequences = rows * beams
    prefill = decoder.forward_floats(sequences, prompt_tokens, attention)
    cross = 0
    if source is not None:
        prefill = max(prefill, source.forward_floats(rows, source_tokens, attention))
        cross = sequences * source_tokens * decoder.width * (2 + 2 * decoder.layers)
    decoding = {
        "cache": sequences
        * (prompt_tokens + new_tokens)
        * generation_bytes_per_token(decoder.layers, decoder.width, element_bytes),
        "source": element_bytes * cross,
        "logits": element_bytes * LOGIT_FLOATS_GENERATION * sequences * vocab,
    }
    if element_bytes * prefill > sum(decoding.values()):
        return Job({"weights": element_bytes * params, "prefill": element_bytes * prefill})
    return Job({"weights": element_bytes * params, **decoding})


def feature_peak(params: int, stack: Stack, rows: int, tokens: int, attention: str, element_bytes: int = 4) -> Job:
    """One batch of a feature model (MAUVE's gpt2-large, BERTScore's roberta-large), no gradients."""
    check_attention(attention)
    return Job(
        {"weights": element_bytes * params, "forward": element_bytes * stack.forward_floats(rows, tokens, attention)}
    )


def training_passes(
    decoder_kind: str,
    has_latent: bool,
    fuses_values: bool,
    conditional: bool,
    decoder: Stack,
    encoder: Stack,
    rows: int,
    lengths: dict[str, int],
) -> list[tuple[Stack, int, int, int, bool]]:
    """The transformer passes of one training step (della/models/vae.py, `TransformerVAE.loss`) as
    (stack, rows, tokens, source tokens, fused values): `encoder` is the posterior network (GPT-2
    itself, BART's encoder, or Optimus' BERT); `lengths` the padded width of each sequence role
    of della/run/lengths.py."""
    passes = []
    if has_latent:
        passes.append((encoder, rows, lengths["posterior"], 0, False))
        if conditional:
            passes.append((encoder, rows, lengths["condition"], 0, False))
    source = lengths.get("source", 0) if decoder_kind == SEQ2SEQ and conditional else 0
    if source:
        passes.append((encoder, rows, source, 0, False))  # BART's encoder over the source
    passes.append((decoder, rows, lengths["decoder"], source, fuses_values))
    return passes


PROFILER_TRIES = 4
PROFILER_RUNS = 2  # measurements with events whose highest peak counts (measure_peak_bytes)

# The collated batch's tensor of each sequence role of della/run/lengths.py (della/run/batches.py).
BATCH_KEYS = {"posterior": "x_ids", "condition": "c_ids", "source": "src_ids", "decoder": "dec_ids"}


def model_training_peak(model, batch: dict, attention: str, element_bytes: int = 4) -> Job:
    """The training estimate of a built TransformerVAE on a collated batch (its exact parameter
    count and padded widths): what tests/test_gpu_memory.py and benchmarks/gpu_check compare
    with measured allocations."""
    decoder = stacks_of(model.decoder.model.config)
    encoder = (stacks_of(model.separate_encoder.model.config) if model.separate_encoder is not None else decoder)[
        "encoder"
    ]
    lengths = {role: batch[key].shape[1] for role, key in BATCH_KEYS.items() if key in batch}
    rows = batch["dec_ids"].shape[0]
    passes = training_passes(
        model.config.decoder_kind,
        model.n_groups > 0,
        model.path.fuses_values,
        model.config.conditional,
        decoder["decoder"],
        encoder,
        rows,
        lengths,
    )
    params = sum(p.numel() for p in model.parameters())
    return training_peak(
        params, passes, lengths["decoder"], model.decoder.model.config.vocab_size, rows, attention, element_bytes
    )


def measure_peak_bytes(fn, device) -> int:
    """Peak bytes allocated while fn() runs, above those allocated before it: CUDA's allocator
    statistics on a GPU; on a CPU, the profiler's allocation and free events, replayed in order."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    # The profiler now and then hands back no allocation events at all, or only some of them
    # (each seen once in a full test run: a peak of 0, and one 30 % low, for calls whose peak was
    # right in every other run). A dropped event can only lower the replayed peak, so the peak is
    # the highest of PROFILER_RUNS measurements that recorded any allocation.
    peaks = []
    for _ in range(PROFILER_TRIES):
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = sorted(
            (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
        )
        if events:
            live = peak = 0
            for event in events:
                live += event.nbytes()
                peak = max(peak, live)
            peaks.append(peak)
        if len(peaks) == PROFILER_RUNS:
            return max(peaks)
    if not peaks:
        raise RuntimeError(f"torch's profiler recorded no allocation in {PROFILER_TRIES} tries")
    return max(peaks)


def stacks_of(config) -> dict[str, Stack]:
    """The stacks of a transformers config (an object with its attributes): GPT-2 'decoder'
    (which also encodes), BART 'encoder' and 'decoder', BERT / RoBERTa 'encoder'."""
    kind = config.model_type
    if kind == "gpt2":
        stack = Stack(config.n_layer, config.n_embd, config.n_head, config.n_inner or 4 * config.n_embd)
        return {"decoder": stack, "encoder": stack}
    if kind == "bart":
        ffn_dropout = config.activation_dropout > 0
        return {
            "encoder": Stack(
                config.encoder_layers,
                config.d_model,
                config.encoder_attention_heads,
                config.encoder_ffn_dim,
                ffn_dropout,
            ),
            "decoder": Stack(
                config.decoder_layers,
                config.d_model,
                config.decoder_attention_heads,
                config.decoder_ffn_dim,
                ffn_dropout,
            ),
        }
    if kind in ("bert", "roberta"):
        return {
            "encoder": Stack(
                config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size
            )
        }
    raise ValueError(f"no memory model for model_type {kind!r} (della/cluster/gpu_memory.py, stacks_of)")


# ----------------------------------------------------------------------------- a run config's jobs

# Memory sizes (GiB) of the data-centre and workstation cards a cluster offers, for the table's
# "smallest card" column: 16 (V100, T4), 24 (RTX 3090 / A10 / L4), 32 (V100 32 GB), 40 (A100),
# 48 (A6000 / L40S), 80 (A100 / H100 80 GB), 94 (H100 NVL), 141 (H200).
CARD_SIZES_GIB = (16, 24, 32, 40, 48, 80, 94, 141)
# On top of an estimate, what a job needs besides its tensors: the CUDA context and kernels
# (about 0.5-1 GiB) and the caching allocator's fragmentation (a tenth).
CONTEXT_GIB = 1.0
FRAGMENTATION = 0.10
STAGES = ("train", "generate", "evaluate")
# The latent modules' parameters, as a share of the decoder backbone's: at most DELLA's 6.5 % (8.1M
# beside GPT-2's 124M, latent size 32 over 12 layers; Optimus 0.3 %, Memory 0.5 %, Embedding and
# Softmax under 0.2 %), counted in the dress rehearsal's saved models (results/rehearsal/RUN.md).
LATENT_PARAMETER_SHARE = 0.07


def needed_gib(job: Job) -> float:
    """The card memory a job's estimate asks for, with the CUDA context and fragmentation."""
    return job.gib() * (1 + FRAGMENTATION) + CONTEXT_GIB


def smallest_card(gib: float, sizes=CARD_SIZES_GIB) -> int | None:
    return next((size for size in sorted(sizes) if size >= gib), None)


def architecture_of(config: dict, entry_or_name: dict | str):
    """The published architecture (della/models/architectures.py) a backbone entry or a feature model's
    name stands for, or None (a sample-scale backbone, or a local directory of unknown origin)."""
    from della.models.architectures import PUBLISHED

    if isinstance(entry_or_name, str):
        if entry_or_name in PUBLISHED:
            return PUBLISHED[entry_or_name]
        entries = [e for e in config["backbones"].values() if e["name_or_path"] == entry_or_name]
        if not entries:
            return None
        entry_or_name = entries[0]
    name = entry_or_name.get("create", {}).get("architecture", entry_or_name["name_or_path"])
    return PUBLISHED.get(name)


def _stacks(architecture) -> dict[str, Stack]:
    from transformers import AutoConfig

    return stacks_of(AutoConfig.for_model(architecture.model_type, **architecture.settings))


def run_parameters(config: dict, dataset: str, model: str) -> int | None:
    """Parameters of a run's model: its backbones' as published, and the latent modules as
    LATENT_PARAMETER_SHARE of the decoder's; None when a backbone is not a published architecture."""
    from della.models.plugins import latent_path_class
    from della.pipeline.targets import backbone_of, encoder_backbone_of

    entry = config["models"][model]
    decoder = architecture_of(config, backbone_of(config, dataset, model))
    encoder_entry = encoder_backbone_of(config, model)
    encoder = architecture_of(config, encoder_entry) if encoder_entry is not None else None
    if decoder is None or (encoder_entry is not None and encoder is None):
        return None
    params = decoder.parameters + (encoder.parameters if encoder is not None else 0)
    if latent_path_class(entry["path"], entry.get("plugin")).has_latent:
        params += round(LATENT_PARAMETER_SHARE * decoder.parameters)
    return params


def run_peaks(config: dict, dataset: str, model: str, attention: str = FUSED) -> dict[str, Job] | None:
    """Each stage's estimated peak for one (dataset, model) run of a workflow config, at the
    config's batch sizes and lengths with no token budget; None when a backbone is not a
    published architecture. The latent modules count as LATENT_PARAMETER_SHARE of the decoder."""
    from della.models.plugins import latent_path_class
    from della.pipeline.targets import backbone_of, encoder_backbone_of, generation_decoding
    from della.run.lengths import run_sequences

    check_attention(attention)
    entry = config["models"][model]
    decoder_entry, encoder_entry = backbone_of(config, dataset, model), encoder_backbone_of(config, model)
    decoder_arch = architecture_of(config, decoder_entry)
    encoder_arch = architecture_of(config, encoder_entry) if encoder_entry is not None else None
    if decoder_arch is None or (encoder_entry is not None and encoder_arch is None):
        return None
    kind = decoder_entry["kind"]
    data = config["datasets"][dataset]
    conditional = data["preprocess"]["task"] == "conditional"
    path = latent_path_class(entry["path"], entry.get("plugin"))
    stacks = _stacks(decoder_arch)
    decoder = stacks["decoder"]
    encoder = _stacks(encoder_arch)["encoder"] if encoder_arch is not None else stacks["encoder"]
    vocab = decoder_arch.settings["vocab_size"]
    params = run_parameters(config, dataset, model)
    lengths = {seq.role: seq.length for seq in run_sequences(config, dataset, model)}
    source = lengths.get("source", 0)

    batch = {**config["training"], **entry.get("train", {})}["batch_size"]
    passes = training_passes(kind, path.has_latent, path.fuses_values, conditional, decoder, encoder, batch, lengths)
    peaks = {"train": training_peak(params, passes, lengths["decoder"], vocab, batch, attention)}

    decoding = generation_decoding(config, dataset, model)
    beams = decoding.get("num_beams", 1) if decoding["strategy"] == "beam" else 1
    prompt = lengths["generation"] - decoding["max_new_tokens"]
    peaks["generate"] = generation_peak(
        params,
        decoder,
        vocab,
        config["generation"]["batch_size"],
        beams,
        prompt,
        decoding["max_new_tokens"],
        attention,
        source=stacks["encoder"] if source else None,
        source_tokens=source,
    )

    evaluation = config["evaluation"]
    rows = evaluation["batch_size"] * evaluation["representation"]["iw_chunk"]
    phases = [scoring_peak(params, decoder, vocab, rows, lengths["decoder"], attention, source_tokens=source)]
    for feature_model, settings, used in (
        (evaluation["mauve"]["feature_model"], evaluation["mauve"], True),
        (evaluation["bertscore"]["model"], evaluation["bertscore"], conditional),
    ):
        arch = architecture_of(config, feature_model)
        if not used or arch is None or feature_model in evaluation.get("skip", []):
            continue
        stack = _stacks(arch).get("decoder", _stacks(arch)["encoder"])
        if settings.get("num_layers"):  # BERTScore cuts the model at its layer
            stack = Stack(settings["num_layers"], stack.width, stack.heads, stack.ffn, stack.ffn_dropout)
        tokens = min(settings.get("max_length") or arch.max_positions, arch.max_positions)
        feature = feature_peak(arch.parameters, stack, settings["batch_size"], tokens, attention)
        phases.append(
            Job({"weights": 4 * params, **{f"{k} ({feature_model})": v for k, v in feature.components.items()}})
        )
    peaks["evaluate"] = max(phases, key=lambda job: job.total)
    return peaks


def run_need(config: dict, dataset: str, model: str, attention: str = FUSED) -> tuple[str, Job] | None:
    """The stage and estimate of the most memory a run's jobs cannot do without, the token
    budgets cutting every scoring call and beam search to one row: training (never cut),
    sampling (not cut: its random stream is the batch's), and evaluation's feature models (cut by
    their own batch sizes only). None when a backbone is not a published architecture."""
    one_row = {
        **config,
        "evaluation": {
            **config["evaluation"],
            "batch_size": 1,
            "representation": {**config["evaluation"]["representation"], "iw_chunk": 1},
        },
    }
    if _decoding_of(config, dataset, model)["strategy"] != "sample":
        one_row["generation"] = {**config["generation"], "batch_size": 1}
    peaks = run_peaks(one_row, dataset, model, attention)
    return None if peaks is None else max(peaks.items(), key=lambda item: item[1].total)


def out_of_memory_message(command: str, error: BaseException) -> str | None:
    """For a train/generate/evaluate job that ran out of GPU (or host) memory: what happened and
    the settings to lower; None for any other error."""
    import torch

    out_of_memory = isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)
    if command not in LOWER or not out_of_memory:
        return None
    what = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"out of memory ({what}); lower {LOWER[command]}, or run on a larger card (cluster.gpu_models); "
        f"each job's estimated peak: docs/cluster.md, `della-bench gpu-memory`"
    )


class GpuTooSmall(ValueError):
    """A run whose estimated need exceeds every card of `cluster.gpu_models` (one line)."""


def gpu_model_for(config: dict, dataset: str, model: str) -> str | None:
    """The `--gpus=<model>` of a run's GPU jobs: with `cluster.gpu_models` ({name: GB}) the
    smallest card its estimated need fits (the largest for a backbone of unknown size), else
    `cluster.gpu_model`."""
    cluster = config.get("cluster") or {}
    cards = cluster.get("gpu_models")
    if not cards:
        return cluster.get("gpu_model")
    need = run_need(config, dataset, model)
    if need is None:
        return max(cards, key=cards.get)
    stage, job = need
    gib = needed_gib(job)
    fitting = sorted((size, name) for name, size in cards.items() if size >= gib)
    if not fitting:
        raise GpuTooSmall(
            f"datasets.{dataset} (model {model}): its {stage} jobs need about {gib:.0f} GB of GPU memory "
            f"(della/cluster/gpu_memory.py; docs/cluster.md), more than every card of cluster.gpu_models {cards}; "
            f"lower {LOWER[stage]}, or list a larger card"
        )
    return fitting[0][1]


def larger_card(cards: dict[str, float], than_gb: float) -> str | None:
    """The smallest card of `cards` ({name: GB}, nominal) with more memory than `than_gb` (the GiB
    CUDA reported for the card a job ran out of memory on: within 5 % of its nominal size), or None."""
    larger = sorted((size, name) for name, size in cards.items() if size > than_gb * 1.05)
    return larger[0][1] if larger else None


def _decoding_of(config: dict, dataset: str, model: str) -> dict:
    from della.pipeline.targets import generation_decoding

    return generation_decoding(config, dataset, model)


def table_runs(config: dict) -> list[tuple[str, str]]:
    """(dataset, model) of every run of the config's experiments, in order, each once."""
    runs = []
    for experiment in config["experiments"].values():
        for dataset in experiment["datasets"]:
            for model in experiment["models"]:
                if model in config["models"] and (dataset, model) not in runs:
                    runs.append((dataset, model))
    return runs
