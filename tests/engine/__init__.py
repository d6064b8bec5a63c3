"""Tests on a real Docker engine. Without one they skip, unless CI or OPSKIT_REQUIRE_ENGINE
is set (then they fail)."""
