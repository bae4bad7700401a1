"""creditmodel: a research kit for probability-of-default models of small and micro enterprises.

Stages, each a sub-package, data flowing left to right only::

    data -> features -> models -> validation -> tracking -> export -> pricing
"""

__version__ = "0.1.0"
