"""Softmax paradigm (Wang and Wan 2019): z added to the last hidden state before the LM head."""

from torch import nn

from della.models.latent import LatentPath, register_latent_path


@register_latent_path("softmax")
class SoftmaxPath(LatentPath):
    def __init__(self, decoder, latent_size: int, n_groups: int):
        super().__init__(decoder, latent_size, n_groups)
        self.proj = nn.Linear(latent_size * n_groups, self.hidden_size, bias=False)

    def final_hidden(self, hidden, z):
        return hidden + self.proj(z.flatten(1))[:, None, :]
