"""opskit: keep Docker containers highly available, from Python and Jupyter.

    import opskit
    ops = opskit.connect()
    ops.demo_images()
    ops.deploy(opskit.ServiceSpec(name="web", image="opskit/demo-web:latest", ports={8080: 18080}))

The core (this package minus :mod:`opskit.widgets`) needs only the docker SDK and the standard
library at import; pandas is imported when a frame is asked for, plotly and ipywidgets never.
"""

from __future__ import annotations

import logging

from .bundle import open_bundle
from .errors import (
    ActionFailed,
    BuildFailed,
    Conflict,
    ContainerNotFound,
    CopyFailed,
    DeployFailed,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    InsecureEngine,
    InvalidBundle,
    InvalidSpec,
    InvalidTarget,
    NameConflict,
    NetworkNotFound,
    NotFound,
    OpsKitError,
    OutOfScope,
    PortInUse,
    StorageError,
    WaitTimeout,
)
from .ops import Ops, connect
from .spec import BuildContext, Healthcheck, ServiceSpec

__version__ = "0.1.0"

logging.getLogger("opskit").addHandler(logging.NullHandler())

# Submodules and names reached as ``opskit.figures``, ``opskit.RecoveryPolicy``...: imported on
# first use, so ``import opskit`` stays light (no pandas, plotly or ipywidgets).
_LAZY_MODULES = {"figures", "metrics", "statsframe", "policy", "rules", "widgets", "chaos",
                 "watchdog", "bundle", "replay", "events", "journal", "redact", "diagnose"}
_LAZY_NAMES = {"RecoveryPolicy": "policy", "RuleConfig": "rules", "Watchdog": "watchdog"}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'opskit' has no attribute {name!r}")

__all__ = [
    "ActionFailed",
    "BuildContext",
    "BuildFailed",
    "Conflict",
    "ContainerNotFound",
    "CopyFailed",
    "DeployFailed",
    "EngineError",
    "EngineTimeout",
    "EngineUnavailable",
    "Healthcheck",
    "ImageNotFound",
    "InsecureEngine",
    "InvalidBundle",
    "InvalidSpec",
    "InvalidTarget",
    "NameConflict",
    "NetworkNotFound",
    "NotFound",
    "Ops",
    "OpsKitError",
    "OutOfScope",
    "PortInUse",
    "ServiceSpec",
    "StorageError",
    "WaitTimeout",
    "__version__",
    "connect",
    "open_bundle",
]
