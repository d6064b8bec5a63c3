"""The error tree: the public path ``opskit.errors`` of :mod:`opskit.base.errors`."""

from .base import errors as _real
from .base.errors import *  # noqa: F403
from .base.errors import __all__ as __all__

__doc__ = _real.__doc__  # help(opskit.errors) reads as the module it names
