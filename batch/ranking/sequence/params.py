"""Settings of the sequence model, one frozen value saved with nothing: the same settings and seed give the same
vectors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SequenceParams:
    """Knobs of the sequence model and of its training.

    Attributes:
        length: Events per user read, the most recent before the cutoff.
        lookback_days: How far before the earliest cutoff views are read; older ones never enter a sequence.
        dim: Width of the post, action, gap and position embeddings.
        heads: Attention heads per layer.
        layers: Self-attention layers.
        dropout: Dropout on the input tokens.
        negatives: Posts drawn at random per batch as the negatives of every position.
        batch: Users per training step.
        epochs: Passes over the sampled users.
        max_users: Users sampled for training (those with a like to predict); bounds training time at full scale.
        learning_rate: Adam's step.
        threads: torch threads, fixed so a run is reproducible. One: matrices this small gain little from a second
            thread, and on a busy machine OpenMP's waiting threads made a step ten times slower.
        seed: Seed of sampling, initialisation, dropout and negatives.
    """

    length: int = 50
    lookback_days: float = 30.0
    dim: int = 64
    heads: int = 2
    layers: int = 2
    dropout: float = 0.2
    negatives: int = 256
    batch: int = 256
    epochs: int = 4
    max_users: int = 24_000
    learning_rate: float = 2e-3
    threads: int = 1
    seed: int = 0
