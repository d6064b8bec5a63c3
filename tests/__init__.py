"""opskit's tests: ``unit/`` needs no Docker engine, ``engine/`` runs on a real one.

Helpers both use live in ``support/``; recorded engine payloads in ``payloads/``.
"""
