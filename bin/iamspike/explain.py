"""Explanations of a flagged bin: distinct APIs, top error codes, APIs, source IPs and user agents,
and the reason (one sentence a human reads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from iamspike.principals import short_name

TOP = 5


class CellExplain:
    """What the failures of one (entity, bin) were: counters per dimension (``codes``, ``apis``,
    ``ips``, ``user_agents``, ``services``). The cell's Tally keys (:meth:`defer`) are counted into
    a table when it is first read: the rules read one to three tables of every candidate cell
    (``sensitive.reads_secrets`` the APIs alone, of 30,000 cells over 583,000 aggregated rows),
    only flagged cells all five."""

    __slots__ = (
        "_apis",
        "_codes",
        "_counts",
        "_ips",
        "_items",
        "_keys",
        "_left",
        "_services",
        "_user_agents",
    )

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._apis: dict[str, int] = {}
        self._ips: dict[str, int] = {}
        self._user_agents: dict[str, int] = {}
        self._services: dict[str, int] = {}
        self._left = 0  # the tables (bits of _TABLES) whose keys are not counted yet

    def add(self, service: str, api: str, code: str, ip: str, user_agent: str, count: int) -> None:
        if code:
            self._codes[code] = self._codes.get(code, 0) + count
        if api:
            self._apis[api] = self._apis.get(api, 0) + count
        if ip:
            self._ips[ip] = self._ips.get(ip, 0) + count
        if user_agent:
            self._user_agents[user_agent] = self._user_agents.get(user_agent, 0) + count
        if service:
            self._services[service] = self._services.get(service, 0) + count

    def defer(self, keys: Sequence[tuple], counts: Sequence[int], items: list[int]) -> None:
        """Count the Tally keys ``keys[i]`` (``counts[i]`` failures) of ``items`` into each table
        when it is read."""
        self._keys, self._counts, self._items, self._left = keys, counts, items, _ALL

    def _count(self, bit: int, table: dict[str, int]) -> dict[str, int]:
        self._left &= ~bit
        column, keys, counts = _COLUMN[bit], self._keys, self._counts
        for i in self._items:
            name = keys[i][column]
            if name:
                table[name] = table.get(name, 0) + counts[i]
        return table

    @property
    def codes(self) -> dict[str, int]:
        return self._count(_CODES, self._codes) if self._left & _CODES else self._codes

    @property
    def apis(self) -> dict[str, int]:
        return self._count(_APIS, self._apis) if self._left & _APIS else self._apis

    @property
    def ips(self) -> dict[str, int]:
        return self._count(_IPS, self._ips) if self._left & _IPS else self._ips

    @property
    def user_agents(self) -> dict[str, int]:
        return self._count(_AGENTS, self._user_agents) if self._left & _AGENTS else self._user_agents

    @property
    def services(self) -> dict[str, int]:
        return self._count(_SERVICES, self._services) if self._left & _SERVICES else self._services


# CellExplain's tables as bits, and the column of a Tally key (bin start, account, principal,
# event source, API, error code, source IP, user agent) each counts.
_SERVICES, _APIS, _CODES, _IPS, _AGENTS = 1, 2, 4, 8, 16
_ALL = 31
_COLUMN = {_SERVICES: 3, _APIS: 4, _CODES: 5, _IPS: 6, _AGENTS: 7}


def top(counts: Mapping[str, int], n: int = TOP) -> str:
    """``"name (count), ..."``: the ``n`` largest, ties by name."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
    return ", ".join(f"{name} ({count})" for name, count in ranked)


def number(value: float) -> str:
    """How the reason writes ``expected`` and ``upper``: the row's value (rounded to 3 decimals)
    to 3 significant digits below 10 (``0.05``, ``4``, ``9.83``), whole above."""
    value = round(value, 3)
    return f"{value:.3g}" if value < 10 else str(round(value))


def reason(
    entity: str,
    failures: int,
    span_text: str,
    expected: float,
    upper: float,
    apis: int,
    codes: int,
    onset: bool,
    insufficient_history: int | None = None,
    peers: int = 0,
    seasonal: int = 0,
    peer_kind: str = "principal",
) -> str:
    """One sentence a human reads: what happened against what was expected, and why it stands out.

    ``onset``: held down as failures from silence (breadth is what stands out);
    ``insufficient_history``: bins of data before this one when too few (compared with ``peers``
    other entities of its kind, ``peer_kind``); ``seasonal``: days whose same time of day the
    expectation used."""
    text = (
        f"{entity} had {failures} failed calls in {span_text}, expected {number(expected)}"
        f" (upper {number(upper)}), across {apis} API{'' if apis == 1 else 's'}"
        f" and {codes} error code{'' if codes == 1 else 's'}"
    )
    notes = []
    if insufficient_history is not None:
        n = insufficient_history
        data = (
            f"the data has only {n} bin{'' if n == 1 else 's'} of {span_text} before it"
            if n
            else f"it is in the first {span_text} of the data"
        )
        if peers:
            others = f"{peers} other {peer_kind}{'' if peers == 1 else 's'}"
            if peer_kind == "principal":
                others += " of its account"
            fail = "fails" if peers == 1 else "fail"
            notes.append(f"{data}, so it is compared with what the {others} usually {fail}")
        else:
            notes.append(f"{data}, with nothing to compare it with")
    if onset:
        if apis > 1:
            notes.append(
                f"it had no failures before, so what stands out is that {apis} different APIs failed"
            )
        else:
            notes.append("it had no failures before, and they are all on 1 API")
    if seasonal:
        notes.append(f"compared with the same time of day on the last {seasonal} days")
    if notes:
        text += "; " + "; ".join(notes)
    return text + "."


def explain(
    cell: CellExplain,
    account: str,
    principal: str,
    failures: int,
    span_text: str,
    expected: float,
    upper: float,
    onset: bool,
    insufficient_history: int | None,
    peers: int,
    seasonal: int,
    notes: Sequence[str] = (),
) -> dict[str, object]:
    """The explanation fields of one output row; ``notes`` extend the reason (what stands out)."""
    entity = short_name(principal) if principal else f"account {account}"
    text = reason(
        entity,
        failures,
        span_text,
        expected,
        upper,
        len(cell.apis),
        len(cell.codes),
        onset,
        insufficient_history,
        peers,
        seasonal,
        "principal" if principal else "account",
    )
    if notes:
        text = text[:-1] + "; " + "; ".join(notes) + "."
    return {
        "distinct_apis": len(cell.apis),
        "top_error_codes": top(cell.codes),
        "top_apis": top(cell.apis),
        "top_source_ips": top(cell.ips),
        "top_user_agents": top(cell.user_agents),
        "reason": text,
    }


class CellDetail:
    """What explains a cell (entity, bin offset): the Tally's keys and the count rows' entries in
    it. ``prefetch`` reads the count rows of many cells at once (each block decompressed once,
    each row read once) into their cells' explanations."""

    def __init__(self, idx: np.ndarray, cell: np.ndarray, n_bins: int, results) -> None:
        self.idx, self.cell, self.n_bins = idx, cell, n_bins
        self.keys, self.counts, self.n_keys = results.keys, results.tally.counts, results.n_keys
        self.key_counts = results.key_counts  # in the order of ``keys``: no tuple hashed again
        self.item_row, self.count_rows = results.item_row, results.count_rows
        self.from_rows: dict[int, CellExplain] = {}
        self.with_rows = bool(len(idx)) and int(idx.max()) >= self.n_keys  # items of count rows

    def prefetch(self, e_idx: np.ndarray, t_idx: np.ndarray) -> None:
        wanted = np.asarray(e_idx, dtype=np.int64) * self.n_bins + np.asarray(t_idx, dtype=np.int64)
        take = np.isin(self.cell, wanted) & (self.idx >= self.n_keys)
        self._read(self.item_row[self.idx[take] - self.n_keys], self.cell[take])

    def _read(self, rows: np.ndarray, cells: np.ndarray) -> None:
        """Each row's entries into its cell's explanation (each row once: its first item)."""
        explained = self.from_rows
        order = cells[np.argsort(rows, kind="stable")].tolist()  # add_fields goes by row

        def tables_of(i: int):
            out = explained.get(order[i])
            if out is None:
                out = explained[order[i]] = CellExplain()
            return out._services, out._apis, out._codes, out._ips, out._user_agents

        self.count_rows.add_fields(rows.tolist(), tables_of)

    def __call__(self, entity: int, t: int) -> CellExplain:
        target = entity * self.n_bins + t
        cell = self.cell  # once per explained cell (33,704 cells of 583,000 aggregated rows)
        lo, hi = int(cell.searchsorted(target)), int(cell.searchsorted(target, "right"))
        items = self.idx[lo:hi].tolist()
        if self.with_rows:
            n_keys = self.n_keys
            mine = [i - n_keys for i in items if i >= n_keys]
            if mine and target not in self.from_rows:
                self._read(self.item_row[mine], np.full(len(mine), target, dtype=np.int64))
            items = [i for i in items if i < n_keys]
        out = self.from_rows.pop(target, None) or CellExplain()
        out.defer(self.keys, self.key_counts, items)
        return out
