"""Desired state: the spec each container was deployed from, written on it and read back.

A watchdog started later, or restarted, must know what each service wants without being told
again. Every replica opskit creates carries its spec as a label (``io.opskit.spec``, compact
JSON) with an HMAC under the scope key (``io.opskit.spec-sig``). Env *values* are never written
there (labels end up in bundles and screens): the label lists the env names, and the values are
read back from the container's own ``Config.Env`` when the spec is rebuilt. A label that fails
its signature, or whose spec does not hash to the container's ``io.opskit.spec-hash``, is not
believed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from ..base import labels as L
from ..base.errors import InvalidSpec
from .service import ServiceSpec

__all__ = ["spec_from_attrs", "spec_labels"]

_ENV_NAMES = "env_names"


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, b"opskit-spec\0" + text.encode(), hashlib.sha256).hexdigest()[:32]


def spec_labels(spec: ServiceSpec, key: bytes) -> dict[str, str]:
    """The labels that carry ``spec`` on its containers (no env value among them)."""
    data = spec.to_dict()
    data[_ENV_NAMES] = sorted(data.pop("env"))
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return {L.SPEC: text, L.SPEC_SIG: _sign(key, text)}


def spec_from_attrs(attrs: Mapping[str, Any], key: bytes) -> tuple[ServiceSpec | None, str]:
    """The spec a container was deployed from, read back from its inspect payload.

    Returns:
        ``(spec, "")``, or ``(None, why)`` when the container carries no spec label (made by
        an older opskit), a label that fails its check, or lacks an env value it names.
    """
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    text = labels.get(L.SPEC)
    if not text:
        return None, "it carries no spec label (deployed by an older opskit)"
    if not hmac.compare_digest(str(labels.get(L.SPEC_SIG, "")), _sign(key, text)):
        return None, "its spec label fails its signature (not written by this scope's key)"
    try:
        data = json.loads(text)
        names = data.pop(_ENV_NAMES)
        env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
        missing = [n for n in names if n not in env]
        if missing:
            return None, f"its env lacks {missing[0]}, which its spec names"
        spec = ServiceSpec.from_dict({**data, "env": {n: env[n] for n in names}})
    except (ValueError, TypeError, KeyError, AttributeError, InvalidSpec) as exc:
        return None, f"its spec label cannot be read: {exc}"
    if L.spec_digest(key, spec.config_hash) != labels.get(L.SPEC_HASH):
        return None, "its spec label does not match its spec hash"
    return spec, ""
