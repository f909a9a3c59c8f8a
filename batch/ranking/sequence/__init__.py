"""A neural sequence recommender: a small SASRec-style self-attention model over each user's recent feed.

``histories`` turns feed rows before a cutoff into padded per-user sequences, ``targets`` marks the next liked post
of every position, ``model`` is the torch network, ``training`` fits it with sampled negatives in a seeded,
deterministic CPU run, and ``readout`` gives one vector per user and per post (``vectors``), so that a user x post
score is a dot product and scores in blocks like the other user-post spaces; ``recommender`` ranks with them in the
seen-aware recommenders' shape. Only ``model``, ``determinism``, ``training`` and ``readout`` import torch (the
``dl`` extra), and only when the model is trained.
"""
