"""Docker Swarm as the distributed engine: frames of nodes, services and tasks, health-gated
rollouts with opskit's own deadline and rollback, a watch that escalates what Swarm leaves
alone, chaos across nodes, and bundles with the swarm's frames. Swarm restarts its tasks;
opskit never does."""

from .cluster import Swarm, connect_swarm
from .service import RolloutOutcome

__all__ = ["RolloutOutcome", "Swarm", "connect_swarm"]
