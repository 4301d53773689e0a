"""The built-in experiment kinds: importing this package registers every one (one module per kind).

Add a kind: write ``research/kinds/<name>.py`` with an ``@register_kind`` class and import it here.
"""

from layerlab.research.kinds import (
    codes,  # noqa: F401  (CS231n: CNN codes + a linear classifier, transfer learning)
    coordconv,  # noqa: F401  (Liu et al. 2018: the CoordConv study)
    curriculum,  # noqa: F401  (Bengio et al. 2009; Wu et al. 2021: curriculum learning)
    intrinsic,  # noqa: F401  (Li et al. 2018: intrinsic dimension by subspace training)
    seeds,  # noqa: F401  (repeat a run over seeds)
)
