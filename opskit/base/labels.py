"""Label names opskit puts on what it creates, and the scope check built on them.

This is the only module that knows the label names. A container is in scope of an
:class:`~opskit.engine.connection.Engine` when it carries ``io.opskit.managed=true``, the engine's
scope
name in ``io.opskit.scope``, and an ownership token in ``io.opskit.owner`` that only a holder of
the scope key can compute (an HMAC over scope, name and spec hash). A container someone labelled
by hand to look like opskit's (a forged label) fails the token check.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

PREFIX = "io.opskit."
MANAGED = PREFIX + "managed"
SCOPE = PREFIX + "scope"
SERVICE = PREFIX + "service"
REPLICA = PREFIX + "replica"
SPEC_HASH = PREFIX + "spec-hash"
OWNER = PREFIX + "owner"
ROLE = PREFIX + "role"
DEMO_DIGEST = PREFIX + "demo-digest"
CREATED_BY = PREFIX + "created-by"
IMAGE_SCOPE = PREFIX + "image-scope"
SPEC = PREFIX + "spec"
SPEC_SIG = PREFIX + "spec-sig"

__all__ = [
    "CREATED_BY",
    "DEMO_DIGEST",
    "IMAGE_SCOPE",
    "MANAGED",
    "OWNER",
    "PREFIX",
    "REPLICA",
    "ROLE",
    "SCOPE",
    "SERVICE",
    "SPEC",
    "SPEC_HASH",
    "SPEC_SIG",
    "check_owned",
    "image_labels",
    "owner_token",
    "resource_labels",
    "spec_digest",
]


def owner_token(key: bytes, scope: str, name: str, spec_hash: str) -> str:
    """Return the ownership token for a container; 32 hex characters."""
    msg = f"{scope}\0{name}\0{spec_hash}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]


def image_labels(scope: str) -> dict[str, str]:
    """Labels for an image opskit builds.

    Deliberately not :data:`MANAGED`/:data:`SCOPE`: every container made from an image
    inherits its labels, and must not look like opskit's because of that.
    """
    return {IMAGE_SCOPE: scope}


def spec_digest(key: bytes, config_hash: str) -> str:
    """The spec-hash label: keyed, so a shared hash cannot be used to guess env values."""
    return hmac.new(key, config_hash.encode(), hashlib.sha256).hexdigest()[:24]


def resource_labels(scope: str, *, service: str = "", role: str = "") -> dict[str, str]:
    """Labels for a network, volume or lease opskit creates (no ownership token needed)."""
    labels = {MANAGED: "true", SCOPE: scope}
    if service:
        labels[SERVICE] = service
    if role:
        labels[ROLE] = role
    return labels


def check_owned(labels: Mapping[str, str] | None, *, name: str, scope: str,
                key: bytes, image_labels: Mapping[str, str] | None = None) -> str | None:
    """Say why a container is *not* opskit's, or return ``None`` when it is.

    Args:
        labels: the container's labels.
        name: the container's name at creation (recorded in ``io.opskit.replica``'s token).
        scope: the scope the caller acts in.
        key: the scope key.
        image_labels: the labels of the container's image; a token the container only
            inherited from its image (``docker commit`` of an opskit container, or an image
            built ``FROM`` one) does not make it opskit's.
    """
    labels = labels or {}
    if image_labels and labels.get(OWNER) and image_labels.get(OWNER) == labels.get(OWNER):
        return "its opskit labels come from its image, not from opskit creating it"
    if labels.get(MANAGED) != "true":
        return "it carries no opskit labels (opskit did not create it)"
    if labels.get(SCOPE) != scope:
        return f"it belongs to opskit scope '{labels.get(SCOPE, '?')}', not '{scope}'"
    token = labels.get(OWNER, "")
    want = owner_token(key, scope, labels.get(REPLICA, name), labels.get(SPEC_HASH, ""))
    if not hmac.compare_digest(token, want):
        return "its opskit labels do not carry a valid ownership token (forged or from another key)"
    return None
