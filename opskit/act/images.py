"""Build images without ever pulling: ``docker build`` and opskit's demo images.

:func:`build` streams the engine's build log to a callback and the ``opskit`` logger, and checks
first that every base image is already on the engine, since the classic builder would pull a
missing ``FROM`` image by itself. :func:`demo_images` builds the ``opskit/demo-*`` images from
the contexts under ``opskit/demo/`` plus the host's static busybox, skipping up-to-date ones.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import struct
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import errors
from ..base import labels as lbl
from ..base.redact import LineRedactor
from ..engine.calls import context_paths, is_read_timeout, refusal_message
from ..engine.connection import Engine
from ..engine.translate import translate

log = logging.getLogger("opskit")

__all__ = ["BUSYBOX_ENV", "DEMO_IMAGES", "BuildProgress", "BuildResult", "base_images", "build",
           "busybox_path", "demo_images", "image_exists", "image_id", "is_static_elf"]

DEMO_IMAGES: Mapping[str, str] = {name: f"opskit/demo-{name}:latest"
                                  for name in ("web", "crash", "flap", "hog")}
BUSYBOX_ENV = "OPSKIT_BUSYBOX"
BUILD_TIMEOUT = 300.0
_DEMO_DIR = Path(__file__).parents[1] / "demo"  # opskit/demo/
_STEP = re.compile(r"^Step (\d+)/(\d+) :")
_VAR = re.compile(r"\$(?:\{(\w+)(?::-([^}]*))?\}|(\w+))")


@dataclass(frozen=True)
class BuildProgress:
    """One line of a build log: ``line`` belongs to step ``step`` of ``steps`` (0 before any)."""

    tag: str
    step: int
    steps: int
    line: str


@dataclass(frozen=True)
class BuildResult:
    """What a build did; ``built`` is False when the image was up to date and left alone."""

    tag: str
    image_id: str
    duration: float
    log: tuple[str, ...]
    built: bool = True


def image_id(engine: Engine, ref: str) -> str:
    """Return a local image's full ID, like ``docker image inspect -f '{{.Id}}' REF``.

    Raises:
        ImageNotFound: no such image on the engine (nothing is pulled).
        EngineError, EngineUnavailable: the engine refused or did not answer.
    """
    found = _find(engine, ref)
    if found is None:
        raise errors.ImageNotFound(ref, engine.host)
    return str(found["Id"])


def image_exists(engine: Engine, ref: str) -> bool:
    """Say whether an image is on the engine, like ``docker image inspect REF``; never pulls."""
    return _find(engine, ref) is not None


def build(engine: Engine, path: str | os.PathLike[str], *, tag: str, dockerfile: str | None = None,
          buildargs: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
          progress: Callable[[BuildProgress], None] | None = None,
          extra_files: Mapping[str, str] | None = None, timeout: float | None = None
          ) -> BuildResult:
    """Build and tag an image from a context folder, like ``docker build --pull=false -t TAG``.

    The build log (``progress``, the result's ``log``, :class:`BuildFailed`) has its secrets
    masked by :class:`opskit.base.redact.LineRedactor`.

    Args:
        engine: the engine to build on.
        path: the context folder; it must hold ``dockerfile`` (``Dockerfile``), a path in it.
        tag: the reference to tag the image with.
        buildargs, labels: ``--build-arg`` values; extra labels (``io.opskit.image-scope``
            is added; never the container labels, which would be inherited).
        progress: called with a :class:`BuildProgress` for each log line.
        extra_files: ``{name in context: host path}`` added to the context, which is then sent
            as an in-memory tar (the folder's ``.dockerignore`` still applies).
        timeout: seconds the engine may stay silent during the build (300).

    Raises:
        InvalidSpec: the context, its Dockerfile or an extra file is missing (before any call).
        BuildFailed: a base image is not on the engine (nothing is pulled), or a step failed.
        EngineUnavailable, EngineError: the engine did not answer or refused.
    """
    context, name = Path(path), dockerfile or "Dockerfile"
    _check_context(context, name, extra_files or {})
    text = (context / name).read_text(encoding="utf-8", errors="replace")
    missing = [ref for ref in base_images(text, buildargs) if not image_exists(engine, ref)]
    if missing:
        raise errors.BuildFailed(tag, f"base image {', '.join(map(repr, missing))} is not on the "
                                 "engine and opskit never pulls, so no pull was done and the "
                                 "build did not start; build it or `docker load` it first")
    kwargs: dict[str, Any] = {
        "tag": tag, "dockerfile": name, "buildargs": dict(buildargs or {}), "decode": True,
        "labels": {**lbl.image_labels(engine.scope), **(labels or {})}, "rm": True,
        "forcerm": True, "pull": False, "timeout": timeout or BUILD_TIMEOUT}
    if extra_files:
        kwargs.update(fileobj=_tar_context(context, name, extra_files), custom_context=True)
    else:
        kwargs["path"] = str(context)
    start, lines, found, step, steps = time.monotonic(), list[str](), "", 0, 0
    redact = LineRedactor(table="build")  # a step's `RUN mysql -pX` or printed key stays out
    try:
        for entry in engine.api.build(**kwargs):
            if entry.get("error") or entry.get("errorDetail"):
                message = entry.get("error") or (entry.get("errorDetail") or {}).get("message")
                raise errors.BuildFailed(tag, str(message), lines)
            if isinstance(entry.get("aux"), dict) and entry["aux"].get("ID"):
                found = str(entry["aux"]["ID"])
            for raw in str(entry.get("stream", "")).splitlines():
                if not raw.strip():
                    continue
                line = redact(raw)
                lines.append(line)
                if match := _STEP.match(raw):
                    step, steps = int(match[1]), int(match[2])
                elif raw.startswith("Successfully built ") and not found:
                    found = raw.split()[-1]
                log.debug("build %s: %s", tag, line)
                if progress is not None:
                    progress(BuildProgress(tag, step, steps, line))
    except errors.OpsKitError:
        raise
    except Exception as exc:
        raise _build_error(exc, engine, tag, lines, kwargs["timeout"]) from exc
    if not found:
        raise errors.BuildFailed(tag, "the engine reported no image ID", lines)
    found = found if found.startswith("sha256:") else image_id(engine, found)
    duration = time.monotonic() - start
    log.info("built %s (%s) in %.1fs", tag, found[7:19], duration)
    return BuildResult(tag, found, duration, tuple(lines), True)


def base_images(dockerfile: str, buildargs: Mapping[str, str] | None = None) -> list[str]:
    """Return the images a Dockerfile's text takes from the engine (``FROM``, ``COPY --from``).

    ``scratch`` and earlier build stages are left out; ``ARG`` defaults given before the first
    ``FROM`` and ``buildargs`` are expanded (``$A``, ``${A}``, ``${A:-default}``).
    """
    text = "\n".join(x for x in dockerfile.splitlines() if not x.lstrip().startswith("#"))
    args: dict[str, str] = {}
    stages: set[str] = set()
    refs: list[str] = []
    for line in re.sub(r"\\[ \t]*\n", " ", text).splitlines():
        word, *more = line.split(None, 1) or [""]
        rest = "".join(more)
        if word.upper() == "ARG" and not stages:
            key, _, default = rest.strip().partition("=")
            args[key] = (buildargs or {}).get(key, default.strip("\"'"))
        elif word.upper() == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")] or ["scratch"]
            ref = _VAR.sub(lambda m: args.get(m[1] or m[3]) or m[2] or "", parts[0])
            if ref and ref.lower() != "scratch" and ref.lower() not in stages:
                refs.append(ref)
            stages.add(parts[2].lower() if len(parts) > 2 and parts[1].lower() == "as" else "")
        elif word.upper() == "COPY":
            refs += [src for p in rest.split() if p.startswith("--from=")
                     and not (src := p[7:]).isdigit() and src.lower() not in stages]
    return list(dict.fromkeys(refs))


def is_static_elf(data: bytes) -> bool:
    """Say whether ``data`` (a file's bytes) is an ELF executable without a ``PT_INTERP`` header."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    order, wide = "<" if data[5] == 1 else ">", data[4] == 2  # ELF64 or ELF32 offsets
    (e_type,) = struct.unpack_from(order + "H", data, 16)
    (phoff,) = struct.unpack_from(order + ("Q" if wide else "I"), data, 32 if wide else 28)
    size, count = struct.unpack_from(order + "HH", data, 54 if wide else 42)
    if e_type not in (2, 3) or count == 0 or size < 4 or phoff + count * size > len(data):
        return False  # not ET_EXEC nor ET_DYN (static-pie), or truncated
    types = [struct.unpack_from(order + "I", data, phoff + i * size)[0] for i in range(count)]
    return 3 not in types  # PT_INTERP names the dynamic loader it needs


def busybox_path() -> Path:
    """The static busybox put into demo images: ``$OPSKIT_BUSYBOX``, else ``/bin/busybox``."""
    return Path(os.environ.get(BUSYBOX_ENV) or "/bin/busybox")


def demo_images(engine: Engine, *, progress: Callable[[BuildProgress], None] | None = None,
                force: bool = False) -> list[str]:
    """Build the demo images that are missing or out of date, like ``docker build`` per image.

    Each image carries ``io.opskit.demo-digest``, a digest of its context and of busybox; an
    image whose label matches is skipped (no ``progress`` call) unless ``force``.

    Returns:
        The tags of :data:`DEMO_IMAGES`, in its order.

    Raises:
        InvalidSpec: busybox is missing or not statically linked (before any engine call).
        BuildFailed, EngineError, EngineUnavailable: as :func:`build`.
    """
    busybox = busybox_path()
    hint = f"`apt-get install busybox-static`, or set {BUSYBOX_ENV} to a static busybox."
    try:
        data = busybox.read_bytes()
    except OSError as exc:
        raise errors.InvalidSpec(BUSYBOX_ENV, f"cannot read busybox at '{busybox}' "
                                 f"({exc.strerror})", value=str(busybox), hint=hint) from exc
    if not is_static_elf(data):
        raise errors.InvalidSpec(BUSYBOX_ENV, f"'{busybox}' is not a statically linked "
                                 "executable, so it cannot run in a FROM scratch image",
                                 value=str(busybox), hint=hint)
    for name, tag in DEMO_IMAGES.items():
        digest = hashlib.sha256(b"opskit-demo-1" + hashlib.sha256(data).digest())
        for file in sorted(p for p in (_DEMO_DIR / name).rglob("*") if p.is_file()):
            digest.update(file.relative_to(_DEMO_DIR).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        value = "sha256:" + digest.hexdigest()
        current = (_find(engine, tag) or {}).get("Config") or {}
        if (current.get("Labels") or {}).get(lbl.DEMO_DIGEST) == value and not force:
            log.debug("demo image %s is up to date (%s)", tag, value[7:19])
            continue
        build(engine, _DEMO_DIR / name, tag=tag, progress=progress,
              labels={**lbl.image_labels("demo"), lbl.DEMO_DIGEST: value},
              extra_files={"busybox": str(busybox)})
    return list(DEMO_IMAGES.values())


def _find(engine: Engine, ref: str) -> dict[str, Any] | None:
    try:
        return dict(engine.api.inspect_image(ref))
    except Exception as exc:
        error = translate(exc, f"docker image inspect {ref}", host=engine.host, target=ref)
        if isinstance(error, errors.ImageNotFound):
            return None
        raise error from exc


def _check_context(context: Path, dockerfile: str, extra_files: Mapping[str, str]) -> None:
    if not (context / dockerfile).is_file():
        problem = (f"'{context}' holds no '{dockerfile}'" if context.is_dir()
                   else f"'{context}' is not a folder")
        raise errors.InvalidSpec("build.context", problem, value=str(context),
                                 hint="pass the folder that holds the Dockerfile, and "
                                 "dockerfile= with its path inside that folder if not named so.")
    for name, source in extra_files.items():
        if not Path(source).is_file():
            raise errors.InvalidSpec(f"build.extra_files[{name}]", f"'{source}' is not a file",
                                     value=source, hint="give the host path of an existing file.")


def _tar_context(context: Path, dockerfile: str, extra_files: Mapping[str, str]) -> io.BytesIO:
    ignore = context / ".dockerignore"
    patterns = [p.strip() for p in (ignore.read_text() if ignore.is_file() else "").splitlines()
                if p.strip() and not p.strip().startswith("#")]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in sorted(context_paths(str(context), patterns, dockerfile)):
            if rel not in extra_files:
                tar.add(context / rel, arcname=rel, recursive=False, filter=_as_root)
        for name, source in extra_files.items():
            tar.add(source, arcname=name, recursive=False, filter=_as_root)
    buffer.seek(0)
    return buffer


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _build_error(exc: Exception, engine: Engine, tag: str, lines: list[str],
                 timeout: float) -> errors.OpsKitError:
    refused = refusal_message(exc)
    if refused is not None:
        return errors.BuildFailed(tag, refused, lines)
    if is_read_timeout(exc):
        return errors.BuildFailed(tag, f"the engine sent nothing for {timeout:g}s, so the build "
                                  "was abandoned (a step hangs, or the engine is stuck)", lines)
    return translate(exc, f"docker build -t {tag}", host=engine.host, target=tag)
