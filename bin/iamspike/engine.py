"""The ``iamspike`` engine: options, the chunk-accumulating Detector, and ``run``.

Reads like its pipeline: rows (or CloudTrail records) are classified and aggregated per
(bin, account, identity, API, error code, IP, user agent) as they arrive; ``results()`` folds
identities to principals, zero-fills the bins, fits baselines per principal and per account,
scores every bin and explains the flagged ones. Nothing is scored before ``results()``, so any
chunking of the same rows gives the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from iamspike import bins, explain, state
from iamspike.baseline import BaselineParams, fit_baselines
from iamspike.cloudtrail import FIELDS, RAW, TIME, parse_raw, record_to_row
from iamspike.failures import AUTHORIZATION, CONSOLE_LOGIN_FAILURE, ErrorClasses, console_login_failed
from iamspike.principals import fold_arn, fold_principal, short_name
from iamspike.scoring import ScoreParams, score_counts, severity, upper_bound

SHOW_VALUES = ("spikes", "all", "state")
BY_VALUES = {"account": ("account",), "principal": ("principal",), "both": ("account", "principal")}
OUTPUT_FIELDS = (
    "_time",
    "entity_type",
    "account",
    "principal",
    "failures",
    "expected",
    "upper",
    "score",
    "severity",
    "distinct_apis",
    "top_error_codes",
    "top_apis",
    "top_source_ips",
    "top_user_agents",
    "reason",
)
# An API a principal fails on is "new" when the principal's failures have been watched for this
# long before (its first failure in the data or the saved state) and never touched that API.
NOVELTY_HISTORY = 3 * 86400
MAX_CELLS = 60_000_000  # bins x principals kept in memory; older bins are dropped beyond it
_BATCH = 20_000


class OptionError(ValueError):
    """A bad option; ``str(e)`` is one line fit for Splunk's UI."""


@dataclass(frozen=True)
class Options:
    span: int = 3600
    by: tuple[str, ...] = ("account", "principal")
    sensitivity: float = 1.0
    min_failures: int = 5
    show: str = "spikes"
    classes: tuple[str, ...] = (AUTHORIZATION,)
    event_sources: tuple[str, ...] = ()
    count_field: str | None = None
    threshold: float = 50.0  # score (0..100) at or above which a bin is flagged
    history: int = 30 * 86400  # seconds of history kept by show=state
    half_life: int = 7 * 86400  # decay of old history in the level
    min_history: int = 86400  # below this much history: "insufficient history", pooled prior
    lookup: str | None = field(default=None, compare=False)  # error-class CSV (default: app's)


# ----------------------------------------------------------------------------------- options


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _number(key: str, value: str, low: float, high: float, integer: bool = False) -> float:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise OptionError(f"{key} must be {kind}, got '{value}'") from None
    if not (low <= number <= high) or (not integer and not math.isfinite(number)):
        raise OptionError(f"{key} must be between {low:g} and {high:g}, got '{value}'")
    return number


def _duration(key: str, value: str, low: int, high: int) -> int:
    try:
        seconds = bins.parse_duration(value)
    except ValueError as exc:
        raise OptionError(f"{key}: {exc}") from None
    if not low <= seconds <= high:
        raise OptionError(f"{key} must be between {low}s and {high}s, got '{value}'")
    return seconds


def parse_options(args: list[str], lookup: str | None = None) -> Options:
    """SPL ``key=value`` tokens -> Options; OptionError (one line) on anything bad."""
    seen: dict[str, str] = {}
    for token in args:
        key, sep, value = token.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if not sep or not key:
            raise OptionError(f"unexpected argument '{token}': options are key=value ({_KEYS})")
        if key not in _PARSERS:
            raise OptionError(f"unknown option '{key}' (valid: {_KEYS})")
        if key in seen or (key in _ALIASES and _ALIASES[key] in seen):
            raise OptionError(f"option '{key}' given twice")
        if value == "":
            raise OptionError(f"option '{key}' needs a value")
        seen[key] = value
    values: dict[str, object] = {}
    for key, value in seen.items():
        name, parsed = _PARSERS[key](value)
        values[name] = parsed
    options = Options(lookup=lookup, **values)  # type: ignore[arg-type]
    known = ErrorClasses.load(lookup).classes()
    unknown = [name for name in options.classes if name not in known]
    if unknown:
        raise OptionError(f"unknown error class '{unknown[0]}' (valid: {', '.join(sorted(known))})")
    if options.half_life < options.span:
        raise OptionError("half_life must be at least one span")
    return options


def _parse_by(value: str) -> tuple[str, object]:
    if value.lower() not in BY_VALUES:
        raise OptionError(f"by must be account, principal or both, got '{value}'")
    return "by", BY_VALUES[value.lower()]


def _parse_show(value: str) -> tuple[str, object]:
    if value.lower() not in SHOW_VALUES:
        raise OptionError(f"show must be spikes, all or state, got '{value}'")
    return "show", value.lower()


def _parse_span(value: str) -> tuple[str, object]:
    try:
        return "span", bins.parse_span(value)
    except ValueError as exc:
        raise OptionError(str(exc)) from None


def _parse_classes(value: str) -> tuple[str, object]:
    names = tuple(name.lower() for name in _split_list(value))
    if not names:
        raise OptionError("classes needs at least one error class, e.g. classes=authorization")
    return "classes", names


def _parse_sources(value: str) -> tuple[str, object]:
    names = _split_list(value)
    if not names:
        raise OptionError("event_sources needs at least one service, e.g. iam.amazonaws.com")
    return "event_sources", tuple(name if "." in name else name + ".amazonaws.com" for name in names)


def _parse_count_field(value: str) -> tuple[str, object]:
    if any(ch in value for ch in " ,=\"'"):
        raise OptionError(f"count_field must be a field name, got '{value}'")
    return "count_field", value


_PARSERS = {
    "span": _parse_span,
    "by": _parse_by,
    "show": _parse_show,
    "classes": _parse_classes,
    "event_sources": _parse_sources,
    "count_field": _parse_count_field,
    "sensitivity": lambda v: ("sensitivity", _number("sensitivity", v, 0.01, 100.0)),
    "threshold": lambda v: ("threshold", _number("threshold", v, 1.0, 99.0)),
    "min_failures": lambda v: ("min_failures", int(_number("min_failures", v, 1, 10**9, True))),
    "history": lambda v: ("history", _duration("history", v, 3600, 400 * 86400)),
    "half_life": lambda v: ("half_life", _duration("half_life", v, 300, 400 * 86400)),
    "min_history": lambda v: ("min_history", _duration("min_history", v, 0, 90 * 86400)),
}
_ALIASES: dict[str, str] = {}
_KEYS = ", ".join(sorted(_PARSERS))


def span_text(span: int) -> str:
    """``3600`` -> ``"1h"`` (for reasons)."""
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if span % seconds == 0:
            return f"{span // seconds}{unit}"
    return f"{span}s"


# ---------------------------------------------------------------------------------- detector

_COL = {name: i for i, name in enumerate(FIELDS)}
_STANDARD_HEADER = list(FIELDS)
_EVENT_MARKERS = ("errorCode", "eventName", "eventSource", "userIdentity.arn", "recipientAccountId")


class Detector:
    """Accumulates rows chunk by chunk; scores everything once in :meth:`results`."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self._classes = ErrorClasses.load(self.options.lookup)
        self._counted = self._classes.counter(self.options.classes)
        self._sources = frozenset(self.options.event_sources)
        # (bin, account, type, arn, issuer, invokedBy, identity account, principalId,
        #  eventSource, eventName, errorCode, sourceIP, userAgent) -> failures
        self._agg: dict[tuple, int] = {}
        self._lo = math.inf
        self._hi = -math.inf
        self._rows = 0
        self._junk_time = 0
        self._bad_rows = 0
        self._bad_state = 0
        self._state: list[state.StateEntry] = []
        self._messages: list[str] = []

    # ---- input

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        """One chunk of Splunk rows (see the engine API): raw events, aggregated rows, state rows."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        index = {name: i for i, name in enumerate(header)}
        state_i = index.get(state.STATE_FIELD)
        if state_i is not None:
            live = []
            for row in rows:
                if state_i < len(row) and row[state_i]:
                    self._add_state(row[state_i])
                else:
                    live.append(row)
            rows = live
            if not rows:
                return
        self._rows += len(rows)
        if self.options.count_field:
            self._add_aggregated(index, rows)
        elif any(name in index for name in _EVENT_MARKERS):
            self._add_events(index, len(header), rows)
        elif RAW in index:
            self._add_raw(index, rows)
        else:
            self._bad_rows += len(rows)

    def add_records(self, records: Iterable[Mapping]) -> None:
        """CloudTrail record dicts (a log file's ``Records[]``)."""
        batch: list[list[str]] = []
        for record in records:
            if not isinstance(record, Mapping):
                self._bad_rows += 1
                continue
            batch.append(record_to_row(record))
            if len(batch) >= _BATCH:
                self._rows += len(batch)
                self._add_events(_COL, len(FIELDS), batch)
                batch = []
        if batch:
            self._rows += len(batch)
            self._add_events(_COL, len(FIELDS), batch)

    def _track_times(self, rows: list[list[str]], time_i: int | None) -> None:
        if time_i is None:
            self._junk_time += len(rows)
            return
        try:
            values = [float(row[time_i]) for row in rows]
            low, high = min(values), max(values)
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError
        except (ValueError, IndexError):
            values = []
            for row in rows:
                try:
                    value = float(row[time_i])
                except (ValueError, IndexError):
                    value = math.nan
                if math.isfinite(value):
                    values.append(value)
                else:
                    self._junk_time += 1
            if not values:
                return
            low, high = min(values), max(values)
        self._lo = min(self._lo, low)
        self._hi = max(self._hi, high)

    def _add_events(self, index: Mapping[str, int], width: int, rows: list[list[str]]) -> None:
        time_i = index.get(TIME)
        self._track_times(rows, time_i)
        if time_i is None:
            return
        cols = [index.get(name, width) for name in FIELDS]
        padded = width in cols
        code_i, name_i, msg_i, console_i = cols[4], cols[2], cols[5], cols[17]
        get_key = itemgetter(*[cols[_COL[name]] for name in _KEY_FIELDS])
        get_tail = itemgetter(*[cols[_COL[name]] for name in _TAIL_FIELDS])
        counted = self._counted
        sources = self._sources
        source_i = cols[_COL["eventSource"]]
        agg = self._agg
        span = self.options.span
        has_codes = code_i < width
        console_possible = name_i < width
        pad = [""]
        for row in rows:
            if has_codes:
                code = row[code_i]
                if code:
                    if not counted[code]:
                        continue
                elif not (console_possible and row[name_i] == "ConsoleLogin"):
                    continue
            elif not (console_possible and row[name_i] == "ConsoleLogin"):
                continue
            if padded:
                row = row + pad
            if not code_i < width or not row[code_i]:
                if not console_login_failed(row[name_i], row[msg_i], row[console_i]):
                    continue
                code = CONSOLE_LOGIN_FAILURE
                if not counted[code]:
                    continue
            if sources and row[source_i] not in sources:
                continue
            try:
                when = float(row[time_i])
            except ValueError:
                continue  # counted by _track_times
            if when != when:
                continue
            key = (int(when // span) * span, *get_key(row), code, *get_tail(row))
            agg[key] = agg.get(key, 0) + 1

    def _add_aggregated(self, index: Mapping[str, int], rows: list[list[str]]) -> None:
        count_field = self.options.count_field
        time_i = index.get(TIME)
        needed = (TIME, "account", "principal", count_field)
        missing = [name for name in needed if name not in index]
        if missing:
            self._bad_rows += len(rows)
            self._messages.append(
                f"count_field={count_field} needs the fields {', '.join(needed)};"
                f" missing: {', '.join(missing)}"
            )
            return
        self._track_times(rows, time_i)
        acct_i, prin_i, count_i = index["account"], index["principal"], index[count_field]
        code_i = index.get("errorCode")
        name_i = index.get("eventName")
        source_i = index.get("eventSource")
        counted = self._counted
        sources = self._sources
        span = self.options.span
        agg = self._agg
        for row in rows:
            code = row[code_i] if code_i is not None else ""
            if code and not counted[code]:
                continue
            source = row[source_i] if source_i is not None else ""
            if sources and source not in sources:
                continue
            try:
                when = float(row[time_i])
                count = float(row[count_i])
            except ValueError:
                self._bad_rows += 1
                continue
            if not (math.isfinite(when) and math.isfinite(count)) or count <= 0:
                continue
            name = row[name_i] if name_i is not None else ""
            key = (
                int(when // span) * span,
                row[acct_i],
                "",
                row[prin_i],
                "",
                "",
                "",
                "",
                source,
                name,
                code,
                "",
                "",
            )
            agg[key] = agg.get(key, 0) + round(count)

    def _add_raw(self, index: Mapping[str, int], rows: list[list[str]]) -> None:
        raw_i = index[RAW]
        time_i = index.get(TIME)
        parsed = []
        for row in rows:
            raw = row[raw_i]
            record = parse_raw(raw) if raw else None
            if record is None:
                self._bad_rows += 1
                continue
            converted = record_to_row(record)
            if time_i is not None and row[time_i]:
                converted[0] = row[time_i]
            parsed.append(converted)
        if parsed:
            self._add_events(_COL, len(FIELDS), parsed)

    def _add_state(self, text: str) -> None:
        try:
            entry = state.decode(text)
        except ValueError:
            self._bad_state += 1
            return
        if entry.span != self.options.span:
            self._bad_state += 1
            return
        self._state.append(entry)

    # ---- output

    def messages(self) -> list[str]:
        """Warnings for the user (skipped rows, ignored state rows), one line each."""
        out = list(self._messages)
        if self._junk_time:
            out.append(f"{self._junk_time} rows had no usable _time and were skipped")
        if self._bad_rows:
            out.append(f"{self._bad_rows} rows lacked the fields iamspike needs and were skipped")
        if self._bad_state:
            out.append(
                f"{self._bad_state} iamspike_state rows were ignored"
                " (not readable or saved with another span)"
            )
        return out

    def results(self) -> list[dict[str, object]]:
        """Score everything accumulated; rows per the engine API (show=spikes|all|state)."""
        return _Scorer(self).rows()


_KEY_FIELDS = (
    "recipientAccountId",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.invokedBy",
    "userIdentity.accountId",
    "userIdentity.principalId",
    "eventSource",
    "eventName",
)
_TAIL_FIELDS = ("sourceIPAddress", "userAgent")


# ----------------------------------------------------------------------------------- scoring


class _Scorer:
    """One results() pass: entities, matrices, baselines, scores, rows."""

    def __init__(self, detector: Detector) -> None:
        self.d = detector
        self.o = detector.options

    def _entities(self) -> None:
        """Unique aggregation keys -> parallel arrays (principal, bin, API id, count)."""
        span = self.o.span
        self.principals: dict[tuple[str, str], int] = {}
        self.accounts: dict[str, int] = {}
        self.p_account: list[int] = []
        self.p_service: list[bool] = []
        self.keys = list(self.d._agg)
        by_identity: dict[tuple, int] = {}
        api_ids: dict[str, int] = {}
        k_p, k_api = [], []
        for key in self.keys:
            ident = key[1:8]
            p = by_identity.get(ident)
            if p is None:
                account, ptype, arn, issuer, invoked, uacct, pid = ident
                if ptype == "" and issuer == "" and invoked == "" and uacct == "" and pid == "":
                    principal = fold_arn(arn) or "unknown"  # Input B: principal given as is
                else:
                    principal = fold_principal(ptype, arn, issuer, invoked, uacct, pid)
                p = by_identity[ident] = self._principal(
                    account or uacct or "unknown", principal, ptype == "AWSService" or _is_service(principal)
                )
            k_p.append(p)
            api = key[9]
            a = api_ids.get(api)
            if a is None:
                a = api_ids[api] = len(api_ids)
            k_api.append(a)
        n = len(self.keys)
        self.api_ids = api_ids
        self.k_bin = np.fromiter((key[0] // span for key in self.keys), dtype=np.int64, count=n)
        self.k_p = np.array(k_p, dtype=np.int64)
        self.k_api = np.array(k_api, dtype=np.int64)
        self.k_count = np.fromiter(self.d._agg.values(), dtype=np.float64, count=n)
        self.n_apis = max(len(api_ids), 1)
        self.k_console = np.fromiter(
            (key[10] == CONSOLE_LOGIN_FAILURE for key in self.keys), dtype=bool, count=n
        )

    def _breadth(self, n_bins: int, n_principals: int) -> np.ndarray:
        """Distinct APIs per (bin, principal) from the live keys, ``(bins, principals)``."""
        matrix = np.zeros((n_bins, n_principals), dtype=np.float32)
        t = self.k_bin - self.first
        keep = (t >= 0) & (t < n_bins)
        if keep.any():
            cell = t[keep] * n_principals + self.k_p[keep]
            triples = np.unique(cell * self.n_apis + self.k_api[keep])
            cells, per_cell = np.unique(triples // self.n_apis, return_counts=True)
            matrix.reshape(-1)[cells] = per_cell
        return matrix

    def _novelty(self, s_seen: list[tuple[int, int, int]], n_principals: int) -> None:
        """The (principal, API) pairs that fail for the first time, from the live keys and the saved
        state's first failures (``s_seen``: principal, API id, bin): ``self.first_fail`` holds each
        pair's first bin as arrays (principal, API, bin) sorted by principal, and
        ``self.new_cells`` / ``self.new_apis`` list, sorted by cell (bin offset * principals +
        principal), the pairs that are new in a cell of the matrix: first failure at least
        ``NOVELTY_HISTORY`` after the principal's first failure."""
        self.api_names = list(self.api_ids)
        n_apis = max(len(self.api_ids), 1)
        blank = self.api_ids.get("")
        live = self.k_api != blank if blank is not None else np.ones(len(self.k_api), dtype=bool)
        s_arr = np.array(s_seen, dtype=np.int64).reshape(-1, 3)
        pair = np.concatenate(
            [self.k_p[live] * n_apis + self.k_api[live], s_arr[:, 0] * n_apis + s_arr[:, 1]]
        )
        when = np.concatenate([self.k_bin[live], s_arr[:, 2]])
        empty = np.zeros(0, dtype=np.int64)
        self.first_fail = (empty, empty, empty)
        self.new_cells = self.new_apis = empty
        if not len(pair):
            return
        order = np.lexsort((when, pair))
        pair, when = pair[order], when[order]
        head = np.ones(len(pair), dtype=bool)
        head[1:] = pair[1:] != pair[:-1]
        pair, when = pair[head], when[head]
        principal, api = pair // n_apis, pair % n_apis
        self.first_fail = (principal, api, when)
        watched = np.full(n_principals, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(watched, principal, when)
        history = max(1, NOVELTY_HISTORY // self.o.span)
        new = (when - watched[principal] >= history) & (when >= self.first)
        cells = (when[new] - self.first) * n_principals + principal[new]
        order = np.argsort(cells, kind="stable")
        self.new_cells, self.new_apis = cells[order], api[new][order]

    def _new_in(self, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
        """How many APIs fail for the first time in each cell (bin offset, principal)."""
        wanted = np.asarray(t_idx, dtype=np.int64) * len(self.principals) + np.asarray(e_idx, dtype=np.int64)
        lo = np.searchsorted(self.new_cells, wanted, side="left")
        hi = np.searchsorted(self.new_cells, wanted, side="right")
        return (hi - lo).astype(np.float64)

    def _new_names(self, t: int, e: int) -> list[str]:
        names = self.api_names
        cell = t * len(self.principals) + e
        lo, hi = np.searchsorted(self.new_cells, [cell, cell + 1])
        return sorted(names[a] for a in self.new_apis[lo:hi].tolist())

    def _console(self, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
        """Failed console sign-ins in the cells (bin offset, principal) from the live keys (sparse:
        only keys with the console code are looked at, no (bins, principals) matrix)."""
        t = self.k_bin - self.first
        keep = (t >= 0) & (t < self.n_bins) & self.k_console
        out = np.zeros(len(t_idx), dtype=np.float64)
        if keep.any():
            n = len(self.principals)
            cells, at = np.unique(t[keep] * n + self.k_p[keep], return_inverse=True)
            sums = np.bincount(at, weights=self.k_count[keep])
            wanted = np.asarray(t_idx, dtype=np.int64) * n + np.asarray(e_idx, dtype=np.int64)
            pos = np.minimum(np.searchsorted(cells, wanted), len(cells) - 1)
            out = np.where(cells[pos] == wanted, sums[pos], 0.0)
        return out

    def _explainer(self, entity_of_key: np.ndarray, keep: np.ndarray):
        """A function (entity, bin offset) -> CellExplain over the live keys of that cell."""
        n_bins = self.n_bins
        idx = np.flatnonzero(keep & (self.k_bin >= self.first))
        cell = entity_of_key[idx] * n_bins + (self.k_bin[idx] - self.first)
        order = np.argsort(cell, kind="stable")
        idx, cell = idx[order], cell[order]
        agg, keys = self.d._agg, self.keys

        def get(entity: int, t: int) -> explain.CellExplain:
            target = entity * n_bins + t
            lo, hi = np.searchsorted(cell, [target, target + 1])
            out = explain.CellExplain()
            for i in idx[lo:hi].tolist():
                key = keys[i]
                out.add(key[8], key[9], key[10], key[11], key[12], agg[key])
            return out

        return get

    def _principal(self, account: str, principal: str, service: bool | None = None) -> int:
        p = self.principals.get((account, principal))
        if p is None:
            a = self.accounts.setdefault(account, len(self.accounts))
            p = self.principals[(account, principal)] = len(self.principals)
            self.p_account.append(a)
            self.p_service.append(bool(service) if service is not None else _is_service(principal))
        return p

    def rows(self) -> list[dict[str, object]]:
        o, d = self.o, self.d
        span = o.span
        self._entities()
        has_live = d._lo <= d._hi
        live_first = int(d._lo // span) if has_live else None
        live_last = int(d._hi // span) if has_live else None
        firsts = [e.first // span for e in d._state]
        lasts = [e.last // span for e in d._state]
        if not has_live and not firsts:
            return []
        first = min([*firsts, *([live_first] if has_live else [])])
        last = max([*lasts, *([live_last] if has_live else [])])
        # State history: only bins before the live rows (the live rows win where they overlap).
        s_bin, s_entity, s_count, s_apis = [], [], [], []
        s_seen: list[tuple[int, int, int]] = []
        for entry in d._state:
            if entry.seen:
                p = self._principal(entry.account, entry.principal)
                for api, start in entry.seen.items():
                    a = self.api_ids.setdefault(api, len(self.api_ids))
                    s_seen.append((p, a, start // span))
            for start, count in entry.bins.items():
                b = start // span
                if live_first is not None and b >= live_first:
                    continue
                s_bin.append(b)
                s_entity.append(self._principal(entry.account, entry.principal))
                s_count.append(count)
                s_apis.append(entry.apis.get(start, 1))
        n_principals = len(self.principals)
        n_bins = last - first + 1
        max_bins = max(o.history // span + 1, MAX_CELLS // max(n_principals, 1))
        if n_bins > max_bins:
            d._messages.append(
                f"time range of {n_bins} bins is too long for {n_principals} principals;"
                f" only the last {max_bins} bins are used"
            )
            first = last - max_bins + 1
            n_bins = max_bins
        all_b = np.concatenate([self.k_bin, np.array(s_bin, dtype=np.int64)]) - first
        all_e = np.concatenate([self.k_p, np.array(s_entity, dtype=np.int64)])
        all_c = np.concatenate([self.k_count, np.array(s_count, dtype=np.float64)])
        keep = all_b >= 0
        counts = bins.dense_counts(all_b[keep], all_e[keep], all_c[keep], n_bins, n_principals)
        self.first, self.n_bins = first, n_bins
        self._novelty(s_seen, n_principals)
        breadth = self._breadth(n_bins, n_principals)
        state_b = np.array(s_bin, dtype=np.int64) - first
        restored = state_b >= 0
        breadth[state_b[restored], np.array(s_entity, dtype=np.int64)[restored]] = np.array(
            s_apis, dtype=np.float32
        )[restored]
        if o.show == "state":
            return self._state_rows(counts, breadth)
        out_from = (live_first - first) if has_live else n_bins
        out_from = max(out_from, 0)
        p_account = np.array(self.p_account, dtype=np.int64)
        params = BaselineParams(
            half_life_bins=o.half_life / span, min_history_bins=int(o.min_history // span)
        )
        rows: list[dict[str, object]] = []
        service = np.array(self.p_service, dtype=bool)
        if "principal" in o.by and n_principals:
            base = fit_baselines(counts, first * span, span, p_account, params, breadth)
            names = sorted(self.principals.items(), key=lambda item: item[1])
            labels = [(acct, prin) for (acct, prin), _ in names]
            cells = self._explainer(self.k_p, np.ones(len(self.keys), dtype=bool))
            # The onset hold-down is for automation: AWS service principals keep the fixed cap;
            # other principals are held down less the further the count is above min_failures;
            # bins where failed console sign-ins alone reach min_failures are not held down.
            onset_mean = np.where(service, 0.0, float(o.min_failures))
            rows += self._score("principal", counts, breadth, base, labels, cells, out_from, onset=onset_mean)
        if "account" in o.by and self.accounts:
            # AWS service principals act on the account's resources; their denials are not the
            # account's principals probing, so they are scored alone, not in the account's sum.
            # An account's breadth is its distinct (principal, API) pairs: a spike spread thinly
            # over many principals is broad.
            n_accounts = len(self.accounts)
            group = np.where(service, n_accounts, p_account)
            acc_counts = bins.sum_by_group(counts, group, n_accounts + 1)[:, :n_accounts]
            acc_breadth = bins.sum_by_group(breadth, group, n_accounts + 1)[:, :n_accounts]
            failing = (counts > 0).astype(np.float32)
            acc_spread = bins.sum_by_group(failing, group, n_accounts + 1)[:, :n_accounts]
            del failing
            del counts, breadth
            base = fit_baselines(acc_counts, first * span, span, None, params, acc_breadth)
            spread_base = fit_baselines(acc_spread, first * span, span, None, params)
            labels = [(acct, "") for acct, _ in sorted(self.accounts.items(), key=lambda item: item[1])]
            cells = self._explainer(p_account[self.k_p], ~service[self.k_p])
            rows += self._score(
                "account", acc_counts, acc_breadth, base, labels, cells, out_from, (acc_spread, spread_base)
            )
        rows.sort(key=lambda r: (r["_time"], r["entity_type"] != "account", r["account"], r["principal"]))
        return rows

    def _score(self, entity_type, counts, breadth, base, labels, cells, out_from, spread=None, onset=None):
        o = self.o
        window = counts[out_from:]
        if o.show == "all":
            t_idx, e_idx = np.nonzero(np.ones_like(window, dtype=bool))
        else:
            t_idx, e_idx = np.nonzero(window >= o.min_failures)
        t_idx = t_idx + out_from
        if not len(t_idx):
            return []
        observed = counts[t_idx, e_idx]
        apis = breadth[t_idx, e_idx]
        onset_mean = hold = console = new_apis = None
        if onset is not None:
            onset_mean = onset[e_idx]
            console = self._console(t_idx, e_idx)
            hold = console < o.min_failures
            new_apis = self._new_in(t_idx, e_idx)
        scored = score_counts(
            observed,
            base.expected[t_idx, e_idx],
            base.variance[t_idx, e_idx],
            apis,
            o.sensitivity,
            ScoreParams(),
            with_upper=False,
            silent=base.silent[t_idx, e_idx],
            typical_apis=base.typical_breadth[t_idx, e_idx],
            onset_mean=onset_mean,
            hold=hold,
            new_apis=new_apis,
        )
        score = scored.score
        spread_score = None
        if spread is not None:
            # Accounts are also scored on how many of their principals fail in the bin: a spike
            # spread thinly over many principals can hide in a noisy account total.
            spread_counts, spread_base = spread
            spread_score = score_counts(
                spread_counts[t_idx, e_idx],
                spread_base.expected[t_idx, e_idx],
                spread_base.variance[t_idx, e_idx],
                np.ones(len(t_idx)),
                o.sensitivity,
                ScoreParams(),
                with_upper=False,
                silent=spread_base.silent[t_idx, e_idx],
            ).score
            score = np.maximum(score, spread_score)
        flagged = (score >= o.threshold) & (observed >= o.min_failures)
        pick = np.arange(len(t_idx)) if o.show == "all" else np.flatnonzero(flagged)
        if not len(pick):
            return []
        upper = upper_bound(
            scored.expected[pick],
            np.maximum(base.variance[t_idx[pick], e_idx[pick]], scored.expected[pick]),
            ScoreParams().threshold_surprise / o.sensitivity,
        )
        rows = []
        span = o.span
        for n, i in enumerate(pick.tolist()):
            t, e = int(t_idx[i]), int(e_idx[i])
            cell = cells(e, t)
            account, principal = labels[e]
            failures = int(observed[i])
            expected = float(scored.expected[i])
            up = float(upper[n])
            is_spike = bool(flagged[i])
            insufficient = bool(base.insufficient[t])
            row = {
                "_time": (t + self.first) * span,
                "entity_type": entity_type,
                "account": account,
                "principal": principal,
                "failures": failures,
                "expected": round(expected, 3),
                "upper": round(up, 3),
                "score": round(float(score[i]), 1),
                "severity": severity(float(score[i]), is_spike),
                "distinct_apis": len(cell.apis),
                "top_error_codes": explain.top(cell.codes),
                "top_apis": explain.top(cell.apis),
                "top_source_ips": explain.top(cell.ips),
                "top_user_agents": explain.top(cell.user_agents),
                "reason": explain.reason(
                    short_name(principal) if principal else f"account {account}",
                    failures,
                    span_text(span),
                    expected,
                    up,
                    len(cell.apis),
                    len(cell.codes),
                    bool(scored.onset[i] and not scored.lifted[i]) and failures > 0,
                    int(base.history_bins[t]) if insufficient else None,
                    int(base.peers[e]) - 1 if insufficient else 0,
                    int(base.seasonal_samples[t]),
                ),
            }
            if (
                spread_score is not None
                and spread_score[i] > scored.score[i]
                and spread_score[i] >= o.threshold
            ):
                spread_counts, spread_base = spread
                row["reason"] = str(row["reason"])[:-1] + (
                    f"; {int(spread_counts[t, e])} of its principals failed"
                    f" (usually {float(spread_base.expected[t, e]):.0f}), which decides."
                )
            if scored.lifted[i] and failures > 0:
                if console is not None and not hold[i]:
                    why = f"{int(console[i])} failed console sign-ins, never automation, are not held down"
                else:
                    why = f"{failures} failures against min_failures={o.min_failures} lift the hold-down"
                row["reason"] = str(row["reason"])[:-1] + f"; failures started from silence: {why}."
            if new_apis is not None and new_apis[i] > 0:
                names = self._new_names(t, e)
                shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                row["reason"] = str(row["reason"])[:-1] + f"; first failures on {shown} for this principal."
            if o.show == "all":
                row["is_spike"] = int(is_spike)
            rows.append(row)
        return rows

    def _state_rows(self, counts: np.ndarray, breadth: np.ndarray) -> list[dict[str, object]]:
        o = self.o
        span = o.span
        keep_from = max(0, self.n_bins - (o.history // span))
        first = (self.first + keep_from) * span
        last = (self.first + self.n_bins - 1) * span
        out = [state.encode(state.StateEntry(span, first, last, "", "", {}))]
        window = counts[keep_from:]
        width = breadth[keep_from:]
        names = self.api_names
        fail_p, fail_api, fail_when = self.first_fail
        for (account, principal), p in sorted(self.principals.items()):
            nonzero = np.flatnonzero(window[:, p]).tolist()
            if not nonzero:
                continue
            series = {first + t * span: int(window[t, p]) for t in nonzero}
            apis = {first + t * span: int(width[t, p]) for t in nonzero}
            lo, hi = np.searchsorted(fail_p, [p, p + 1])
            seen = {names[a]: w * span for a, w in zip(fail_api[lo:hi].tolist(), fail_when[lo:hi].tolist())}
            entry = state.StateEntry(span, first, last, account, principal, series, apis, seen)
            out.append(state.encode(entry))
        return out


def _is_service(principal: str) -> bool:
    """An AWS service principal (``delivery.logs.amazonaws.com``) named without an ARN."""
    return not principal.startswith("arn:") and principal.endswith(".amazonaws.com")


def run(records: Iterable[Mapping], options: Options | None = None) -> list[dict[str, object]]:
    """Convenience for the CLI and the benches: ``Detector(options)``, add records, results."""
    detector = Detector(options)
    detector.add_records(records)
    return detector.results()


def iter_chunks(items: list, size: int) -> Iterator[list]:
    """``items`` in chunks of ``size`` (tests and benches use it to prove chunking invariance)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
