"""Seen-aware recommenders fitted on interactions before a cutoff: the baselines the models must beat, and the
source of the models' collaborative features.

- :mod:`.interactions`: views and likes before a cutoff as user x post matrices;
- :mod:`.recommender`: the ``Recommender`` protocol, the seen filter and top-k per block of users;
- :mod:`.popularity`, :mod:`.item_knn`, :mod:`.als`, :mod:`.ease`: the recommenders;
- :mod:`.registry`: each by name with its tuning grid; :mod:`.tuning`: the grid search on a validation window.
"""
