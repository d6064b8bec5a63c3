"""The Jupyter views' parts that need no engine: the deploy form's text fields (ports, env)
parse as the form promises, and a bad env line is refused without showing its value.

The views on the real engine are tested in ../engine/test_widgets.py.
"""

from __future__ import annotations

import pytest

import opskit
from opskit.widgets.formtext import form_field, parse_env_text, parse_ports_text


def test_form_text_parsing() -> None:
    assert parse_ports_text("8080:18080, 9090 53/udp:0.0.0.0:5353") == {
        "8080": "18080", "9090": None, "53/udp": "0.0.0.0:5353"}
    assert parse_env_text("A=1\n\n# x\nB = two=2\n") == {"A": "1", "B": " two=2"}
    with pytest.raises(opskit.InvalidSpec) as caught:
        parse_env_text("A=1\nSECRETVALUE")
    assert caught.value.field == "env" and "SECRETVALUE" not in str(caught.value)
    assert form_field("ports[8080]") == "ports" and form_field("labels[x]") == ""
    assert form_field("healthcheck.interval") == "health_interval"
