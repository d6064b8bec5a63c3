"""Availability and recovery metrics: the public path of :mod:`opskit.analysis.metrics`."""

from .analysis import metrics as _real
from .analysis.metrics import *  # noqa: F403
from .analysis.metrics import __all__ as __all__

__doc__ = _real.__doc__  # help(opskit.metrics) reads as the module it names
