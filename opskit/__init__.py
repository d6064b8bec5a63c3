"""opskit: keep Docker containers highly available, from Python and Jupyter.

    import opskit
    ops = opskit.connect()
    ops.demo_images()
    ops.deploy(opskit.ServiceSpec(name="web", image="opskit/demo-web:latest", ports={8080: 18080}))

The core (this package minus :mod:`opskit.widgets`) needs only the docker SDK and the standard
library at import; pandas is imported when a frame is asked for, plotly and ipywidgets never.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import errors, figures, metrics, policy, spec, statsframe
from .base.errors import *  # noqa: F403  (the error tree; its __all__ joins ours below)
from .base.version import __version__
from .fleet import Fleet, connect_fleet
from .ops import Ops, connect
from .recover.rules import RuleConfig
from .recover.watchdog import Watchdog
from .spec.policy import RecoveryPolicy
from .spec.service import BuildContext, Healthcheck, ServiceSpec
from .swarm import Swarm, connect_swarm

if _TYPE_CHECKING:
    from . import widgets as widgets
    from .analysis.bundle import Bundle, open_bundle

logging.getLogger("opskit").addHandler(logging.NullHandler())

# Reached on first use, because they import a heavy package when imported: widgets imports
# ipywidgets, which the core never does; bundles import pandas and pyarrow.
_LAZY = {"widgets": (".widgets", None), "Bundle": (".analysis.bundle", "Bundle"),
         "open_bundle": (".analysis.bundle", "open_bundle")}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'opskit' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    if attr is not None:
        value.__module__ = __name__
    globals()[name] = value
    return value


__all__ = [
    "BuildContext",
    "Bundle",
    "Fleet",
    "Healthcheck",
    "Ops",
    "RecoveryPolicy",
    "RuleConfig",
    "ServiceSpec",
    "Swarm",
    "Watchdog",
    "__version__",
    "connect",
    "connect_fleet",
    "connect_swarm",
    "errors",
    "figures",
    "metrics",
    "open_bundle",
    "policy",
    "spec",
    "statsframe",
]
__all__ += errors.__all__

# The public names say where users find them (``opskit.ServiceSpec``), not which layer holds
# them, as httpx does: reprs, tracebacks and help() read ``opskit.ServiceSpec``.
for _name in __all__:
    _obj = globals().get(_name)
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = __name__
del _name, _obj
