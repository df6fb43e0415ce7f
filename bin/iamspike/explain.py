"""Explanations of a flagged bin: distinct APIs, top error codes, APIs, source IPs and user agents,
and the reason (one sentence a human reads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
        for table, name in (
            (self.codes, code),
            (self.apis, api),
            (self.ips, ip),
            (self.user_agents, user_agent),
            (self.services, service),
        ):
            if name:
                table[name] = table.get(name, 0) + count


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
