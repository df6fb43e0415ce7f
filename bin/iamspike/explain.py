"""Explanations of a flagged bin: distinct APIs, top error codes, APIs, source IPs and user agents,
and the reason (one sentence a human reads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from iamspike.principals import short_name

TOP = 5


class CellExplain:
    """What the failures of one (entity, bin) were: counters per dimension."""

    __slots__ = ("apis", "codes", "ips", "services", "user_agents")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.apis: dict[str, int] = {}
        self.ips: dict[str, int] = {}
        self.user_agents: dict[str, int] = {}
        self.services: dict[str, int] = {}

    def add(self, service: str, api: str, code: str, ip: str, user_agent: str, count: int) -> None:
        # Written out, not looped over (table, name) pairs: this runs once per key of every cell
        # explained (583,000 aggregated rows: 0.9 of 2.3 s of the results pass, 3.13).
        if code:
            self.codes[code] = self.codes.get(code, 0) + count
        if api:
            self.apis[api] = self.apis.get(api, 0) + count
        if ip:
            self.ips[ip] = self.ips.get(ip, 0) + count
        if user_agent:
            self.user_agents[user_agent] = self.user_agents.get(user_agent, 0) + count
        if service:
            self.services[service] = self.services.get(service, 0) + count


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
            return out.services, out.apis, out.codes, out.ips, out.user_agents

        self.count_rows.add_fields(rows.tolist(), tables_of)

    def __call__(self, entity: int, t: int) -> CellExplain:
        target = entity * self.n_bins + t
        lo, hi = np.searchsorted(self.cell, [target, target + 1])
        items = self.idx[lo:hi]
        if self.with_rows:
            if target not in self.from_rows and (items >= self.n_keys).any():
                mine = items[items >= self.n_keys]
                self._read(self.item_row[mine - self.n_keys], np.full(len(mine), target, dtype=np.int64))
            items = items[items < self.n_keys]
        out = self.from_rows.pop(target, None) or CellExplain()
        keys, counts, add = self.keys, self.counts, out.add
        for i in items.tolist():
            key = keys[i]
            add(key[3], key[4], key[5], key[6], key[7], counts[key])
        return out
