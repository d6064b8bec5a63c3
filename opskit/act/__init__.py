"""Verbs that change the engine: build, deploy, start/stop/..., exec, cp, networks, chaos.

Also the leases and seals that make acting safe, and the action journal that records it.
"""
