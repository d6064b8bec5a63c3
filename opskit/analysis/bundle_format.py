"""A bundle's file, read as untrusted input: Parquet tables, the manifest, and the limits.

A bundle is meant to be shared, so whoever opens one treats it as hostile: the file and the
members' uncompressed size are capped, each member's compression ratio too (a zip bomb expands
about 1000:1), the decoded tables are estimated before pandas builds them, dtypes come from an
allowlist, and every malformed input is an :class:`~opskit.base.errors.InvalidBundle` naming the
member, field or limit. :func:`encode` and :func:`decode` are the tables' Parquet form.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..base.errors import InvalidBundle, OpsKitError
from ..base.units import parse_time
from ..spec.policy import RecoveryPolicy

JSON_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "events": ("attributes",), "actions": ("details",), "findings": ("evidence",),
    "inspections": ("attrs",), "swarm_events": ("attributes",)}
NAME_COLUMN = {"containers": "name", "stats": "name", "events": "name", "logs": "container",
               "health": "container", "actions": "container", "findings": "container",
               "inspections": "name", "swarm_nodes": "node", "swarm_services": "service",
               "swarm_tasks": "service", "swarm_events": "name"}
TIME_COLUMN = {"events": "ts", "stats": "ts", "logs": "ts", "health": "ts", "actions": "ts",
               "findings": "since", "swarm_events": "ts"}

def encode(frame: pd.DataFrame, json_columns: Iterable[str] = ()
           ) -> tuple[bytes, dict[str, str]]:
    """A frame as Parquet bytes (zstd) and its dtypes; ``json_columns`` (dicts) become JSON."""
    out = frame.reset_index(drop=True).copy()
    for column in json_columns:
        out[column] = pd.Series([json.dumps(v, default=str, sort_keys=True) for v in out[column]],
                                dtype=object)
    buffer = io.BytesIO()
    out.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue(), {str(c): str(t) for c, t in frame.dtypes.items()}


def decode(data: bytes, dtypes: Mapping[str, str], json_columns: Iterable[str] = (), *,
           max_decoded: int | None = None) -> pd.DataFrame:
    """Read what :func:`encode` wrote, with the recorded dtypes (``object`` columns included).

    With ``max_decoded``, the table's size in memory is estimated before it is decoded (8
    bytes a cell, plus the bytes of every text value, a value repeated through a Parquet
    dictionary counted on every row) and a larger one is refused.

    Raises:
        ValueError (pyarrow's errors among them, and a table over ``max_decoded``),
            TypeError, KeyError, RecursionError: the data is not such a table;
            :func:`open_tables` says which, as an :class:`~opskit.base.errors.InvalidBundle`.
    """
    return _decode_sized(data, dtypes, json_columns, max_decoded)[0]


def _decode_sized(data: bytes, dtypes: Mapping[str, str], json_columns: Iterable[str],
                  max_decoded: int | None) -> tuple[pd.DataFrame, int]:
    """:func:`decode`, and the estimated size of the table in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(io.BytesIO(data))
    schema = parquet.schema_arrow
    for field in schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if not (pa.types.is_primitive(kind) or pa.types.is_null(kind) or _is_text(kind)):
            raise TypeError(f"column {field.name!r} has the type {field.type}, which bundles "
                            "do not use")
    meta = parquet.metadata
    if max_decoded is not None:
        cells = 8 * meta.num_rows * meta.num_columns
        packed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if max(cells, packed) > max_decoded:
            raise _TooBig(max(cells, packed))
    texts = [f.name for f in schema if _is_text(f.type)]
    table = pq.ParquetFile(io.BytesIO(data), read_dictionary=texts).read()
    size = 8 * table.num_rows * table.num_columns + sum(
        _text_bytes(chunk) for column in table.columns for chunk in column.chunks)
    if max_decoded is not None and size > max_decoded:
        raise _TooBig(size)
    for name in texts:  # back to plain text, as pandas wrote it, now that its size is known
        at = table.schema.get_field_index(name)
        table = table.set_column(at, schema.field(name), table.column(name).cast(
            schema.field(name).type))
    frame = table.to_pandas()
    for column in json_columns:
        frame[column] = pd.Series([json.loads(v) if isinstance(v, str) else None
                                   for v in frame[column]], dtype=object, index=frame.index)
    missing = [str(c) for c in dtypes if c not in frame.columns]
    if missing:
        raise _Missing(missing)
    for column, dtype in dtypes.items():
        if str(frame[column].dtype) == dtype:
            continue
        if not _DTYPE.match(dtype):
            raise TypeError(f"column {column!r} has the dtype {dtype!r}, which bundles do not "
                            "use")
        if dtype == "object":
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
        else:  # an empty table loses its categories' type, for one
            frame[column] = frame[column].astype(dtype)
    return frame, size


_DTYPE = re.compile(r"(?:(?:u?int|U?Int)(?:8|16|32|64)|[Ff]loat(?:32|64)|bool(?:ean)?|object|"
                    r"str(?:ing)?|category|(?:datetime|timedelta)64\[(?:s|ms|us|ns)(?:, UTC)?\])\Z")


def _is_text(kind: Any) -> bool:
    """An Arrow type of text or bytes."""
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _text_bytes(chunk: Any) -> int:
    """Bytes of the text values of one Arrow column chunk, once per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(chunk.type) and _is_text(chunk.type.value_type):
        lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
        return int(pc.sum(lengths).as_py() or 0)
    if _is_text(chunk.type):
        return int(pc.sum(pc.binary_length(chunk)).as_py() or 0)
    return 0


class _Missing(KeyError):
    """Columns a table lacks (turned into InvalidBundle)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        super().__init__(", ".join(map(repr, self.columns)))


class _TooBig(ValueError):
    """A table would take more memory than allowed once decoded (turned into InvalidBundle)."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(size)


# -- opening a file that came from elsewhere --------------------------------------------------

MAX_RATIO = 100
"""The most a zip member over 1 MiB may expand (uncompressed size / compressed size): JSON
deflates about 5:1 and Parquet is stored, while a zip bomb expands about 1000:1."""
DECODED_FACTOR = 8
"""The decoded tables of a bundle may take ``DECODED_FACTOR * max_bytes`` in memory, as
estimated before decoding (Parquet packs a table 3 to 10 times)."""
_RATIO_FROM = 2**20


def zip_members(archive: zipfile.ZipFile, where: str, max_bytes: int
                ) -> dict[str, zipfile.ZipInfo]:
    """The members of a bundle's zip, judged by its directory before anything is read.

    Raises:
        InvalidBundle: a name given twice, an encrypted member or one compressed otherwise
            than stored or deflated, a member expanding more than :data:`MAX_RATIO`, or
            members larger than ``max_bytes`` together, uncompressed.
    """
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in archive.infolist():
        name = info.filename
        if name in members:
            raise InvalidBundle(where, f"the member {name!r} is given twice")
        if info.flag_bits & 0x1:
            raise InvalidBundle(where, f"the member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InvalidBundle(where, f"the member {name!r} uses compression method "
                                f"{info.compress_type}; bundles are stored or deflated")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FROM and ratio > MAX_RATIO:
            raise InvalidBundle(where, f"the member {name!r} would expand from "
                                f"{info.compress_size} to {info.file_size} bytes ({ratio:.0f}:1,"
                                f" more than the {MAX_RATIO}:1 allowed): a zip bomb, not a "
                                "bundle")
        members[name] = info
        total += info.file_size
    if total > max_bytes:
        raise InvalidBundle(where, f"its members hold {total} bytes uncompressed, more than "
                            f"max_bytes={max_bytes}; open_bundle(path, max_bytes=N) opens a "
                            "larger bundle you trust")
    return members


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """A member's bytes, never more than its directory entry declares.

    Raises:
        InvalidBundle: the member is damaged or longer than it declares.
    """
    try:
        with archive.open(info) as member:
            data = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise InvalidBundle(where, f"the member {info.filename!r} is damaged: {exc}") from exc
    if len(data) > info.file_size:
        raise InvalidBundle(where, f"the member {info.filename!r} holds more than the "
                            f"{info.file_size} bytes it declares")
    return data


def load_manifest(data: bytes, where: str, name: str = "manifest.json") -> dict[str, Any]:
    """The manifest as a dict.

    Raises:
        InvalidBundle: not UTF-8 JSON, nested too deeply, or not a JSON object.
    """
    try:
        manifest = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise InvalidBundle(where, f"{name} is nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a number too long
        raise InvalidBundle(where, f"{name} is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise InvalidBundle(where, f"{name} holds a JSON {type(manifest).__name__}, not an "
                            "object")
    return manifest


_FIELDS: dict[str, tuple[type, ...]] = {
    "format": (str,), "version": (int,), "tables": (dict,), "name": (str,),
    "created_at": (str,), "opskit_version": (str,), "scope": (str, type(None)),
    "engine": (dict, type(None)), "recorded_by": (dict, type(None)),
    "watchdog": (dict, type(None)), "captured": (dict, type(None)),
    "policy": (dict, type(None)), "time_range": (dict,), "redaction": (dict,),
    "redaction_total": (int,), "notes": (list,), "services": (list,), "containers": (list,)}
_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a whole number",
               float: "a number", bool: "true or false", type(None): "null"}


def _wrong(where: str, field: str, value: Any, wanted: tuple[type, ...]) -> InvalidBundle:
    return InvalidBundle(where, f"the manifest's {field!r} is {_JSON_NAMES.get(type(value), '?')}"
                         f", not {' or '.join(_JSON_NAMES[t] for t in wanted)}")


def check_manifest(manifest: Mapping[str, Any], where: str, members: Mapping[str, Any], *,
                   format: str, version: int, tables: Sequence[str]) -> None:
    """Check what opskit reads from a manifest, so that a bad one is an
    :class:`~opskit.base.errors.InvalidBundle` naming the field, never an error later on.

    Raises:
        InvalidBundle: another format or version, a field of the wrong type, a table missing
            or naming a member the file does not hold, a bad time range or policy.
    """

    if manifest.get("format") != format:
        raise InvalidBundle(where, f"its format is {manifest.get('format')!r}, not {format!r}")
    found = manifest.get("version")
    if type(found) is not int or found != version:
        raise InvalidBundle(where, f"its format version is {found!r}; this opskit reads version"
                            f" {version} (a newer opskit may read it)")
    for field, wanted in _FIELDS.items():
        if field in manifest and (not isinstance(manifest[field], wanted)
                                  or isinstance(manifest[field], bool)):
            raise _wrong(where, field, manifest[field], wanted)
    for kind in tables:
        meta = manifest.get("tables", {}).get(kind)
        if not isinstance(meta, dict):
            raise InvalidBundle(where, f"the manifest has no table {kind!r}")
        for field, wanted in (("file", (str,)), ("dtypes", (dict,)), ("json", (list,)),
                              ("rows", (int,))):
            if (field in meta and not isinstance(meta[field], wanted)) or (
                    field in ("file", "dtypes") and field not in meta):
                raise _wrong(where, f"tables.{kind}.{field}", meta.get(field), wanted)
        if not all(isinstance(v, str) for v in meta["dtypes"].values()):
            raise InvalidBundle(where, f"the manifest's 'tables.{kind}.dtypes' holds a "
                                "non-text dtype")
        if meta["file"] not in members:
            raise InvalidBundle(where, f"the manifest names the member {meta['file']!r} for "
                                f"the table {kind!r}, and the file does not hold it")
    for bound in ("since", "until"):
        try:
            parse_time(manifest.get("time_range", {}).get(bound))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidBundle(where, f"the manifest's 'time_range.{bound}' is not a time: "
                                f"{exc}") from None
    redaction = manifest.get("redaction", {})
    if not all(isinstance(places, dict) and all(
            isinstance(names, dict) and all(type(n) is int for n in names.values())
            for names in places.values()) for places in redaction.values()):
        raise InvalidBundle(where, "the manifest's 'redaction' is not {table: {where: {name: "
                            "count}}}")
    if manifest.get("policy"):
        try:
            RecoveryPolicy.from_dict(manifest["policy"])
        except (OpsKitError, TypeError, ValueError) as exc:
            raise InvalidBundle(where, f"the manifest's 'policy' is not a recovery policy: "
                                f"{exc}") from None


def open_tables(archive: zipfile.ZipFile, manifest: Mapping[str, Any],
                members: Mapping[str, zipfile.ZipInfo], where: str, kinds: Sequence[str],
                max_decoded: int) -> dict[str, pd.DataFrame]:
    """Decode each table named by a checked manifest, within ``max_decoded`` bytes together.

    Raises:
        InvalidBundle: naming the table and its member that could not be read, or the one
            that passed the budget.
    """
    out: dict[str, pd.DataFrame] = {}
    left = max_decoded
    for kind in kinds:
        meta = manifest["tables"][kind]
        data = read_member(archive, members[meta["file"]], where)
        try:
            frame, size = _decode_sized(data, meta["dtypes"], JSON_COLUMNS.get(kind, ()), left)
        except _TooBig as big:
            raise InvalidBundle(where, f"the table {kind!r} ({meta['file']}) would take about "
                                f"{big.size} bytes of memory once decoded, more than the "
                                f"{left} left of {max_decoded} ({DECODED_FACTOR} x max_bytes); "
                                "open_bundle(path, max_bytes=N) opens a larger bundle you "
                                "trust") from None
        except _Missing as lack:
            raise InvalidBundle(where, f"the table {kind!r} ({meta['file']}) has no column "
                                f"{', '.join(map(repr, lack.columns))}, which the manifest "
                                "lists") from None
        except RecursionError:
            raise InvalidBundle(where, f"the table {kind!r} ({meta['file']}) holds JSON nested "
                                "too deeply to read") from None
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, OSError,
                NotImplementedError) as exc:  # pyarrow's errors are ValueError or OSError
            raise InvalidBundle(where, f"the table {kind!r} ({meta['file']}) could not be "
                                f"read: {type(exc).__name__}: {exc}") from None
        needed = {NAME_COLUMN.get(kind), TIME_COLUMN.get(kind), *JSON_COLUMNS.get(kind, ())}
        needed |= {"id", "service"} if kind == "containers" else set()
        missing = sorted(c for c in needed if c is not None and c not in frame.columns)
        if missing:
            raise InvalidBundle(where, f"the table {kind!r} ({meta['file']}) has no column "
                                f"{', '.join(map(repr, missing))}")
        left -= size
        out[kind] = frame
    return out


# -- the last redaction pass ---------------------------------------------------------------------
