"""Incidents after the fact: bundles, replay of a policy, availability metrics."""
