"""Secrets to feed opskit: every value holds ``CANARY``, so a test greps its outputs for that
word, and finding it anywhere means a secret got through."""

from __future__ import annotations

import random
import string
from typing import Any


def inspect_payload() -> dict[str, Any]:
    """A ``docker inspect`` payload with a secret in the arguments, env, command,
    healthcheck, labels, log options and the last probe's output."""
    return {
        "Id": "c" * 64, "Name": "/web-1", "Args": ["--password", "CANARY4"],
        "Config": {
            "Env": ["Password=CANARY1", "MODE=prod"],
            "Cmd": ["app", "--token=CANARY2"], "Entrypoint": ["/bin/sh", "-c"],
            "Healthcheck": {"Test": ["CMD-SHELL", "wget http://admin:CANARY3@x --header "
                                     "'X-Api-Key: CANARY9'"], "Interval": 1_000_000_000},
            "Labels": {"db_secret": "CANARY5", "tier": "web"}},
        "HostConfig": {"LogConfig": {"Type": "splunk", "Config": {
            "splunk-token": "CANARY10", "splunk-url": "https://admin:CANARY11@splunk:8088",
            "tag": "web"}}},
        "State": {"Status": "running", "Health": {"Status": "unhealthy", "Log": [
            {"ExitCode": 1, "Output": "Authorization: Bearer CANARY12abc"}]}},
    }


def pem_body(seed: int, lines: int = 4) -> list[str]:
    """Base64 lines as a PEM body has (64 wide, a short last one), each holding CANARY."""
    rng = random.Random(seed)
    b64 = string.ascii_letters + string.digits + "+/"
    full = ["CANARY" + "".join(rng.choice(b64) for _ in range(55)) + "x9Z" for _ in range(lines)]
    return [*full, "CANARYq8Zt=="]
