"""The network: SASRec-style causal self-attention over a user's tokens (post + action + gap + position).

A position's output is the user's state after that event; its dot product with a post's embedding, plus the post's
bias, scores that post as the next one liked. Input and output share the post embeddings, as in SASRec, so posts
start from their text embeddings on both sides.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from batch.ranking.sequence.histories import ACTIONS, GAP_BUCKETS, PAD
from batch.ranking.sequence.params import SequenceParams

# Standard deviation of every embedding at the start: logits of a few units, not tens, on the first step.
INIT_SCALE = 0.1


class SequenceModel(nn.Module):
    """Causal self-attention over padded token sequences."""

    def __init__(self, n_posts: int, params: SequenceParams, initial: np.ndarray | None = None) -> None:
        """Args: catalog size, settings, and (n_posts x dim) starting post vectors (None: random)."""
        super().__init__()
        dim = params.dim
        self.posts = nn.Embedding(n_posts + 1, dim, padding_idx=PAD)
        self.bias = nn.Embedding(n_posts + 1, 1, padding_idx=PAD)
        self.actions = nn.Embedding(ACTIONS, dim)
        self.gaps = nn.Embedding(GAP_BUCKETS, dim)
        self.positions = nn.Embedding(params.length, dim)
        with torch.no_grad():
            for table in (self.posts, self.actions, self.gaps, self.positions):
                table.weight.normal_(0.0, INIT_SCALE)
            self.posts.weight[PAD] = 0.0
            self.bias.weight.zero_()
            if initial is not None:
                self.posts.weight[1:] = torch.from_numpy(np.asarray(initial, dtype=np.float32))
        self.dropout = nn.Dropout(params.dropout)
        # Dropout on the inputs only: inside the layers it drew nine masks a step, a fifth of a step's time on CPU.
        layer = nn.TransformerEncoderLayer(dim, params.heads, 2 * dim, 0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, params.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, posts: torch.Tensor, actions: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """(batch x length x dim) user states after each event; padding positions hold zeros."""
        length = posts.shape[1]
        where = torch.arange(length, device=posts.device)
        tokens = self.posts(posts)
        tokens = tokens + self.actions(actions) + self.gaps(gaps) + self.positions(where)[None]
        real = (posts != PAD).unsqueeze(-1).to(tokens.dtype)
        # Padding stays visible to attention but carries zeros (SASRec's timeline mask): a fully masked row of a
        # key-padding mask would give NaN for the left-padded positions.
        states = self.encoder(self.dropout(tokens) * real, mask=_causal_mask(length), is_causal=True)
        out: torch.Tensor = self.norm(states) * real
        return out

    def post_scores(self, states: torch.Tensor, posts: torch.Tensor) -> torch.Tensor:
        """Score of each state against the posts of the same row: (n) states with (n) posts -> (n)."""
        scores: torch.Tensor = (states * self.posts(posts)).sum(-1) + self.bias(posts).squeeze(-1)
        return scores

    def candidate_scores(self, states: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores of every state against a shared set of candidate posts: (n x dim), (m) -> (n x m)."""
        scores: torch.Tensor = states @ self.posts(candidates).T + self.bias(candidates).squeeze(-1)[None]
        return scores


def _causal_mask(length: int) -> torch.Tensor:
    """Additive mask letting each position see itself and what came before."""
    return torch.triu(torch.full((length, length), float("-inf")), diagonal=1)


def initial_vectors(embeddings: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """Post embeddings reduced to ``dim`` principal directions and scaled to :data:`INIT_SCALE`, so posts the text
    model places together start together; padded with small noise when the embeddings are narrower than ``dim``."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, basis = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ basis[:dim].T
    if reduced.shape[1] < dim:
        noise = np.random.default_rng(seed).normal(0.0, 1e-3, (reduced.shape[0], dim - reduced.shape[1]))
        reduced = np.hstack([reduced, noise])
    spread = float(reduced.std()) or 1.0
    scaled: np.ndarray = (reduced * (INIT_SCALE / spread)).astype(np.float32)
    return scaled
