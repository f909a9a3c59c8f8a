"""Fitting the sequence model: every position predicts the next liked post against negatives drawn at random.

Each step takes a batch of users' sequences; the loss is a sampled softmax of each position's target among one set
of random posts shared by the batch (a negative that happens to be the target is masked). Users are sampled up to
``max_users`` (those with at least one position to learn from), and the sample is logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from batch.ranking.positions import IndexArray
from batch.ranking.sequence.determinism import deterministic
from batch.ranking.sequence.histories import PAD, Histories
from batch.ranking.sequence.model import SequenceModel, initial_vectors
from batch.ranking.sequence.params import SequenceParams
from batch.ranking.sequence.targets import next_liked

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainingSample:
    """The users a model learns from.

    Attributes:
        rows: Positions in the histories of the sampled users.
        eligible: Users with at least one position to learn from.
        positions: Positions with a next liked post, among the sampled users.
    """

    rows: IndexArray
    eligible: int
    positions: int


def sample_users(histories: Histories, targets: IndexArray, params: SequenceParams) -> TrainingSample:
    """Up to ``params.max_users`` users with a target, drawn with the seed, in a fixed order."""
    has_target = (targets != PAD).any(axis=1)
    eligible = np.flatnonzero(has_target)
    rng = np.random.default_rng(params.seed)
    rows = eligible if eligible.size <= params.max_users else np.sort(rng.choice(eligible, params.max_users, False))
    return TrainingSample(rows, int(eligible.size), int((targets[rows] != PAD).sum()))


def train_model(histories: Histories, embeddings: np.ndarray | None, params: SequenceParams) -> SequenceModel:
    """A model fitted on ``histories`` (which must hold only events before the cutoff).

    Args:
        histories: Every user's sequence before the cutoff.
        embeddings: (posts x any) post text vectors in the order of ``histories.post_ids``; None starts at random.
        params: Settings and seed.
    """
    targets = next_liked(histories)
    sample = sample_users(histories, targets, params)
    log.info(
        "sequence model: users=%d eligible=%d sampled=%d positions=%d epochs=%d",
        histories.user_ids.size,
        sample.eligible,
        sample.rows.size,
        sample.positions,
        params.epochs,
    )
    with deterministic(params.seed, params.threads):
        initial = None if embeddings is None else initial_vectors(embeddings, params.dim, params.seed)
        model = SequenceModel(histories.post_ids.size, params, initial)
        _fit(model, histories.rows(sample.rows), targets[sample.rows], params)
    return model


def _fit(model: SequenceModel, histories: Histories, targets: IndexArray, params: SequenceParams) -> None:
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    generator = torch.Generator().manual_seed(params.seed)
    tensors = [torch.from_numpy(array) for array in (histories.posts, histories.actions, histories.gaps, targets)]
    started, n_posts = time.perf_counter(), histories.post_ids.size
    model.train()
    for epoch in range(params.epochs):
        order = torch.randperm(tensors[0].shape[0], generator=generator)
        total = 0.0
        for start in range(0, order.numel(), params.batch):
            posts, actions, gaps, wanted = (tensor[order[start : start + params.batch]] for tensor in tensors)
            negatives = torch.randint(1, n_posts + 1, (params.negatives,), generator=generator)
            loss = _loss(model, posts, actions, gaps, wanted, negatives)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            total += float(loss.detach())
        batches = max(1, -(-order.numel() // params.batch))
        log.info("sequence epoch %d: loss=%.4f seconds=%.1f", epoch + 1, total / batches, time.perf_counter() - started)
    model.eval()


def _loss(
    model: SequenceModel,
    posts: torch.Tensor,
    actions: torch.Tensor,
    gaps: torch.Tensor,
    targets: torch.Tensor,
    negatives: torch.Tensor,
) -> torch.Tensor:
    states = model(posts, actions, gaps)
    learn = targets != PAD
    chosen, wanted = states[learn], targets[learn]
    positive = model.post_scores(chosen, wanted)[:, None]
    negative = model.candidate_scores(chosen, negatives)
    negative = negative.masked_fill(negatives[None, :] == wanted[:, None], float("-inf"))
    logits = torch.cat([positive, negative], dim=1)
    return nn.functional.cross_entropy(logits, torch.zeros(wanted.numel(), dtype=torch.long))
