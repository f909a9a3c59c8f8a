"""A neural sequence recommender: a small SASRec-style self-attention model over each user's recent feed.

``histories`` turns feed rows before a cutoff into padded per-user sequences (no torch), ``targets`` marks the next
liked post of every position, ``model`` is the torch network, ``training`` fits it with sampled negatives in a
seeded, deterministic CPU run, and ``vectors`` reads out one vector per user and per post, so that a user x post
score is a dot product and scores in blocks like the other user-post spaces. Only ``model``, ``determinism``,
``training`` and ``vectors`` import torch (the ``dl`` extra).
"""
