"""Several engines as one: a :class:`Fleet` of :class:`opskit.Ops`, reads fanned out in parallel
with a deadline per engine, so one host that is down or slow never stalls the notebook."""

from .fanout import Outcome, fan_out
from .fleet import Fleet, connect_fleet
from .supervisor import EngineAlert, Supervisor

__all__ = ["EngineAlert", "Fleet", "Outcome", "Supervisor", "connect_fleet", "fan_out"]
