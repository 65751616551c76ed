"""Adapters to other cloud maskers, registered as xcloud models.

They run through the same lazy, chunked core and output contract as xcloud's own models, which
makes them baselines (``benchmarks/accuracy.py``), teachers (distillation) and, for
ukis-csmask, the default cascade's first fine stage. ukis-csmask is a dependency of xcloud;
s2cloudless is optional: ``pip install "xcloud[peers]"``.
"""

from xcloud.peers import s2cloudless, ukis  # noqa: F401  (registers the models)
