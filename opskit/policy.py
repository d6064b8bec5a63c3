"""Recovery policies: the public path ``opskit.policy`` of :mod:`opskit.spec.policy`."""

from .spec import policy as _real
from .spec.policy import *  # noqa: F403
from .spec.policy import __all__ as __all__

__doc__ = _real.__doc__  # help(opskit.policy) reads as the module it names
