"""Tests that need no Docker engine: recorded payloads, parsing, specs, policy, redaction,
figures, bundles opened offline, the package's promises. They pass with no engine at all."""
