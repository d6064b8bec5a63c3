"""The ground floor: units, checks, durable files, redaction, labels, errors, the version.

Nothing here imports another opskit layer, docker-py, pandas or Jupyter.
"""
