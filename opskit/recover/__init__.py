"""Detect and recover: health rules, intent, bounded recovery, the watchdog.

The watchdog is level-triggered: every pass compares each spec with what the engine says.
"""
