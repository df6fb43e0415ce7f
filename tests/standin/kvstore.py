"""Splunk's KV store as the shipped searches meet it, with the ``[kvstore]`` limits of limits.conf.

The limits are read from Splunk's own default limits.conf (../shared/data/splunk-spec) and
applied as limits.conf.spec states them:

- ``max_rows_per_query``: "The maximum number of rows that will be returned for a single query
  to a collection. If the query returns more rows than the specified value, then returned result
  set will contain the number of rows specified in this value." An ``inputlookup`` of a
  collection (or a REST GET of it) is one such query: it is cut there, silently.
- ``max_size_per_result_mb``: "The maximum size, in megabytes (MB), of the result that will be
  returned for a single query to a collection": the same query is cut at that size too.
- ``max_queries_per_batch`` / ``max_size_per_batch_result_mb``: a ``lookup`` sends one query
  per distinct input value, in batches; a batch whose results pass the size limit is an error
  here (the spec names the limit, not the outcome, so the stand-in refuses loudly).
- ``max_documents_per_batch_save`` / ``max_size_per_batch_save_mb``: ``outputlookup`` saves in
  batches of at most that many documents and bytes; each batch lands whole.

Writes are generators that yield after every step (the delete of a full replace, each saved
batch), so a test can read the collection between two steps as a concurrent alert would.
Only the fields of the lookup's ``fields_list`` (transforms.conf) are kept, as a KV store lookup
returns no others. A document's size is the length of its JSON text.

``run`` executes the KV store commands of a search (``inputlookup``, ``lookup``,
``outputlookup``) on result rows with the options the shipped SPL uses; anything else it does not
know raises, so a new form in the SPL fails the tests until it is modelled here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from standin import limits

Row = dict[str, object]
MB = 1024 * 1024


class KVStoreLimitError(RuntimeError):
    pass


@dataclass(frozen=True)
class Limits:
    max_rows_per_query: int = 50_000
    max_size_per_result_mb: int = 50
    max_queries_per_batch: int = 1000
    max_size_per_batch_result_mb: int = 100
    max_documents_per_batch_save: int = 1000
    max_size_per_batch_save_mb: int = 50

    @classmethod
    def of_splunk(cls, version: str = "10.4") -> Limits:
        """The ``[kvstore]`` values of Splunk `version`'s etc/system/default/limits.conf."""
        values = {name: limits.default(version, "kvstore", name) for name in cls.__dataclass_fields__}
        if None in values.values():
            raise ValueError(f"[kvstore] of Splunk {version}'s limits.conf lacks {values}")
        return cls(**{name: int(value) for name, value in values.items()})


def size(row: Row) -> int:
    return len(json.dumps(row, separators=(",", ":")))


class Collection:
    """One KV store collection behind one lookup definition (its ``fields_list``)."""

    def __init__(self, fields: Sequence[str], limits: Limits | None = None) -> None:
        self.fields = [f for f in fields if f != "_key"]
        self.limits = limits or Limits.of_splunk()
        self.rows: dict[str, Row] = {}
        self.queries = 0
        self.rows_read = 0
        self.last_query_cut = False

    def _stored(self, key: str, row: Row) -> Row:
        return {"_key": key, **{f: row[f] for f in self.fields if f in row and row[f] not in (None, "")}}

    # -------------------------------------------------------------------------------- reads
    def query(self) -> list[Row]:
        """Every document, as one query returns them: cut at max_rows_per_query and at
        max_size_per_result_mb (``last_query_cut`` says whether it was)."""
        self.queries += 1
        out: list[Row] = []
        total = 0
        for row in self.rows.values():
            total += size(row)
            if len(out) == self.limits.max_rows_per_query or total > self.limits.max_size_per_result_mb * MB:
                break
            out.append(dict(row))
        self.last_query_cut = len(out) < len(self.rows)
        self.rows_read += len(out)
        return out

    def by_keys(self, keys: Iterable[str]) -> dict[str, Row]:
        """The documents of the distinct `keys` (one query each), in batches."""
        wanted = list(dict.fromkeys(k for k in keys if k))
        found: dict[str, Row] = {}
        step = self.limits.max_queries_per_batch
        for start in range(0, len(wanted), step):
            batch = {k: self.rows[k] for k in wanted[start : start + step] if k in self.rows}
            self.queries += 1
            if sum(size(r) for r in batch.values()) > self.limits.max_size_per_batch_result_mb * MB:
                raise KVStoreLimitError("a lookup batch passed max_size_per_batch_result_mb")
            found.update({k: dict(r) for k, r in batch.items()})
        self.rows_read += len(found)
        return found

    # ------------------------------------------------------------------------------- writes
    def _batches(self, rows: Sequence[Row]) -> Iterator[list[Row]]:
        batch: list[Row] = []
        total = 0
        for row in rows:
            if batch and (
                len(batch) == self.limits.max_documents_per_batch_save
                or total + size(row) > self.limits.max_size_per_batch_save_mb * MB
            ):
                yield batch
                batch, total = [], 0
            batch.append(row)
            total += size(row)
        if batch:
            yield batch

    def replace_steps(self, rows: Sequence[Row]) -> Iterator[str]:
        """``outputlookup`` without append: every document deleted, then the rows saved."""
        self.rows.clear()
        yield "deleted"
        for batch in self._batches(rows):
            for row in batch:
                key = str(row.get("_key") or uuid.uuid4().hex)
                self.rows[key] = self._stored(key, row)
            yield "saved"

    def upsert_steps(self, rows: Sequence[Row], key_field: str | None) -> Iterator[str]:
        """``outputlookup append=true [key_field=f]``: each row replaces the document of its key
        (a new key without key_field); nothing else changes."""
        for batch in self._batches(rows):
            for row in batch:
                key = str(row.get(key_field) or "") if key_field else ""
                key = key or str(row.get("_key") or uuid.uuid4().hex)
                self.rows[key] = self._stored(key, row)
            yield "saved"


def run_steps(steps: Iterator[str]) -> None:
    for _ in steps:
        pass


# ------------------------------------------------------------------------------ SPL commands
LOOKUP = re.compile(r"(?P<name>\w+)\s+_key\s+AS\s+(?P<key>\w+)\s+OUTPUT\s+(?P<out>.+)", re.I)
OUTPUT_PAIR = re.compile(r"(\w+)(?:\s+AS\s+(\w+))?", re.I)


def options(rest: str) -> tuple[dict[str, str], list[str]]:
    opts, names = {}, []
    for token in rest.split():
        key, sep, value = token.partition("=")
        if sep:
            opts[key] = value
        else:
            names.append(token)
    return opts, names


def field_values(value) -> list[str]:
    """A field's values: each of a multivalue field's, else the one (none when empty)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    return [str(value)] if value else []


def one_or_many(values: list):
    return None if not values else values[0] if len(values) == 1 else values


def run(
    collections: dict[str, Collection], command: str, rest: str, rows: list[Row]
) -> tuple[list[Row], Iterator[str] | None]:
    """One KV store command of a search over `rows` -> (rows after it, the write's steps or None).
    The caller runs the steps (``run_steps``) or interleaves reads with them."""
    if command == "inputlookup":
        opts, (name,) = options(rest)
        if set(opts) - {"append"}:
            raise NotImplementedError(f"inputlookup {rest}")
        read = collections[name].query()
        return (rows + read if opts.get("append") == "true" else read), None
    if command == "lookup":
        match = LOOKUP.fullmatch(rest.strip())
        if not match:
            raise NotImplementedError(f"lookup {rest}: only lookup <name> _key AS <field> OUTPUT ...")
        # A multivalue key (a list) matches each of its values; the outputs are multivalue, one
        # value per key found (a single value when one is).
        keys = [field_values(row.get(match["key"])) for row in rows]
        found = collections[match["name"]].by_keys(key for row_keys in keys for key in row_keys)
        pairs = [(m[1], m[2] or m[1]) for m in OUTPUT_PAIR.finditer(match["out"])]
        out = []
        for row, row_keys in zip(rows, keys):
            docs = [found[key] for key in row_keys if key in found]
            values = {local: [doc[field] for doc in docs if doc.get(field)] for field, local in pairs}
            out.append({**row, **{local: one_or_many(v) for local, v in values.items()}})
        return out, None
    if command == "outputlookup":
        opts, (name,) = options(rest)
        if set(opts) - {"append", "key_field", "override_if_empty"}:
            raise NotImplementedError(f"outputlookup {rest}")
        collection = collections[name]
        if opts.get("append") == "true":
            return rows, collection.upsert_steps(rows, opts.get("key_field"))
        if not rows and opts.get("override_if_empty") == "false":
            return rows, None
        return rows, collection.replace_steps(rows)
    raise NotImplementedError(command)
