"""Optimus (Li et al. 2020a): a separate BERT encoder, and z injected as Embedding + Memory together.

The BERT encoder is a config setting of the model entry (`encoder_backbone: bert`), not code here;
the KL threshold and cyclical annealing are training settings any model can use.
"""

from baselines.embedding import LatentToEmbedding
from baselines.memory import LatentToMemory
from della.latent import LatentPath, register_latent_path


@register_latent_path("optimus")
class OptimusPath(LatentPath):
    def __init__(self, decoder, latent_size: int, n_groups: int):
        super().__init__(decoder, latent_size, n_groups)
        size = latent_size * n_groups
        self.to_embedding = LatentToEmbedding(size, self.hidden_size)
        self.to_memory = LatentToMemory(size, self.n_layers, self.n_heads, self.head_dim)

    def embed(self, embeds, z):
        return self.to_embedding(embeds, z)

    def memory(self, z):
        return self.to_memory(z)
