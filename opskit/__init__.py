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

from .errors import (
    ActionFailed,
    BuildFailed,
    Conflict,
    ContainerNotFound,
    CopyFailed,
    DeployFailed,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    InsecureEngine,
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

__all__ = [
    "ActionFailed",
    "BuildContext",
    "BuildFailed",
    "Conflict",
    "ContainerNotFound",
    "CopyFailed",
    "DeployFailed",
    "EngineError",
    "EngineUnavailable",
    "Healthcheck",
    "ImageNotFound",
    "InsecureEngine",
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
]
