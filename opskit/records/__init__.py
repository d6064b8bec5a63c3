"""Typed records of what the engine said (events, findings, stats) and their files.

Pure data and arithmetic on recorded payloads: no engine calls.
"""
