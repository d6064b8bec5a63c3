"""The connection to an engine, its scope, and every docker-py request.

The only package that imports docker-py; everything above it speaks opskit's error tree.
"""
