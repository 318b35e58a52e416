"""Fine-tuned GPT-2 / BART-base without a latent variable (paper Sec. 5.3, rows "GPT-2", "BART")."""

from della.models.latent import LatentPath, register_latent_path


@register_latent_path("none")
class NoLatent(LatentPath):
    """A plain language model / seq2seq model: no z, so no KL; IW-PPL reduces to exact PPL."""

    has_latent = False
