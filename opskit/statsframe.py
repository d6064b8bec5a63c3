"""Stats frames: the public path ``opskit.statsframe`` of :mod:`opskit.records.statsframe`."""

from .records import statsframe as _real
from .records.statsframe import *  # noqa: F403
from .records.statsframe import __all__ as __all__

__doc__ = _real.__doc__  # help(opskit.statsframe) reads as the module it names
