"""One incident bundle from the bundles of several engines: every table gains an ``engine``
column, the manifest keeps each engine's own, and the result opens like any bundle
(notebook 06, :meth:`~opskit.analysis.bundle.Bundle.replay`, :func:`opskit.open_bundle`).

Container IDs are unique across engines, so a container's events, probes and stats stay its
own; a service or a container name may exist on several engines, and the ``engine`` column
tells them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..base.errors import InvalidBundle
from ..base.version import __version__
from .bundle import DEFAULT_MAX_BYTES, SUFFIX, TABLES, Bundle, open_bundle, write_bundle
from .tables import concat_like

__all__ = ["combine_bundles"]


def combine_bundles(bundles: Mapping[str, Bundle], name: str, path: str | Path | None = None,
                    *, notes: Sequence[str] = (), max_bytes: int | None = DEFAULT_MAX_BYTES
                    ) -> Bundle:
    """Write one bundle holding ``bundles`` (engine name -> bundle) and open it.

    Raises:
        InvalidBundle: no bundle given.
        StorageError: the file could not be written or would exceed ``max_bytes``.
    """
    if not bundles:
        raise InvalidBundle(name, "has no engine's bundle to combine")
    target = Path(path) if path is not None else Path(
        name if name.endswith(SUFFIX) else name + SUFFIX)
    tables = {kind: _combined(kind, bundles) for kind in TABLES}
    spans = [(b.since, b.until) for b in bundles.values() if b.since and b.until]
    since = min(s for s, _ in spans) if spans else None
    until = max(u for _, u in spans) if spans else None
    first = next(iter(bundles.values())).manifest
    policies = [b.manifest.get("policy") for b in bundles.values() if b.manifest.get("policy")]
    redaction: dict[str, dict[str, dict[str, int]]] = {}
    for bundle in bundles.values():
        for table, places in bundle.redaction.items():
            for where, names in places.items():
                counts = redaction.setdefault(table, {}).setdefault(where, {})
                for masked, count in names.items():
                    counts[masked] = counts.get(masked, 0) + int(count)
    manifest: dict[str, Any] = {
        "name": Path(name).name.removesuffix(SUFFIX),
        "created_at": datetime.now(UTC).isoformat(), "opskit_version": __version__,
        "scope": first.get("scope"), "engines": {
            engine: {k: v for k, v in b.manifest.items() if k not in ("tables", "format",
                                                                       "version")}
            for engine, b in bundles.items()},
        "engine": first.get("engine"),
        "services": sorted({s for b in bundles.values() for s in b.manifest.get("services", [])}),
        "containers": [c for b in bundles.values() for c in b.manifest.get("containers", [])],
        "time_range": {"since": since.isoformat() if since else None,
                       "until": until.isoformat() if until else None,
                       "seconds": (until - since).total_seconds() if since and until else 0.0},
        "captured": {"engines": list(bundles), **(first.get("captured") or {})},
        "policy": policies[0] if policies else None,
        "notes": [*notes, *(n for b in bundles.values() for n in b.manifest.get("notes", []))],
        "redaction": redaction,
        "redaction_total": sum(int(b.manifest.get("redaction_total") or 0)
                               for b in bundles.values()),
    }
    return open_bundle(write_bundle(target, manifest, tables, max_bytes=max_bytes))


def _combined(kind: str, bundles: Mapping[str, Bundle]) -> pd.DataFrame:
    frames = []
    for engine, bundle in bundles.items():
        frame = pd.DataFrame(getattr(bundle, kind)).copy()
        frame.insert(0, "engine", engine)
        frames.append(frame)
    merged = concat_like(frames, frames[0].iloc[:0])
    merged["engine"] = pd.Categorical(merged["engine"], categories=list(bundles))
    return merged
