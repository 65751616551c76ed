"""Adapters to other cloud maskers, registered as xcloud models.

They run through the same lazy, chunked core and output contract as xcloud's own models, which
makes them baselines (``benchmarks/accuracy.py``) and teachers (distillation) at once. Their
packages are optional: ``pip install "xcloud[peers]"``.
"""

from xcloud.peers import s2cloudless, ukis  # noqa: F401  (registers the models)
