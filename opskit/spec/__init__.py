"""What to run and how to recover it: :class:`ServiceSpec`, healthchecks, dependencies, recovery
policies. ``opskit.spec`` is a public path: ``from opskit.spec import ServiceSpec``."""

from .service import NAME_RE, BuildContext, Healthcheck, PortMap, ServiceSpec

__all__ = ["NAME_RE", "BuildContext", "Healthcheck", "PortMap", "ServiceSpec"]
