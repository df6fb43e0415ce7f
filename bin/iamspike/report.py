"""``iamspike --report FILE.html``: one self-contained page an analyst attaches to a ticket.

Per flagged entity (an account or a principal with at least one spike): its failures against
expected and upper over the whole window as an inline SVG chart (bars of failures, the expected
line and the band up to upper, spikes in red; a long window is drawn in buckets of the bins' max,
with a second chart zoomed on the highest-scoring spike), its flagged bins with the engine's
explanation, and its top APIs, error codes, source IPs and user agents over those bins. No script,
font or image is fetched: the page reads the same offline.

Input: the engine's ``show=all`` rows (every bin of every entity, with ``is_spike``).
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence

from iamspike import atomic
from iamspike.formats import option_text, plural
from iamspike.options import Options

Row = Mapping[str, object]
MAX_COLUMNS = 720  # bars drawn per chart; more bins are drawn in buckets
MAX_EXPLAINED = 12  # flagged bins explained per entity (highest scores)
ZOOM_BINS = 96  # bins either side of the top spike in the zoomed chart
NUMBERS = ("failures", "expected", "upper", "score")
EXPLANATION_FIELDS = ("reason", "top_error_codes", "top_apis", "top_source_ips", "top_user_agents")
TOP_FIELDS = (
    ("top_apis", "APIs"),
    ("top_error_codes", "error codes"),
    ("top_source_ips", "source IPs"),
    ("top_user_agents", "user agents"),
)
_TOP_ITEM = re.compile(r"(.+?) \((\d+)\)(?:, |$)")
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#1d2530;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 4px;border-top:1px solid #d5dbe3;
padding-top:16px}.sub{color:#5b6675}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #e4e8ee;vertical-align:top}th{background:#f3f5f8;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sev{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
.critical{background:#a4161a}.high{background:#d9480f}.medium{background:#e8a317}.low{background:#5c7cfa}
.info,.none{background:#868e96}dl{display:grid;grid-template-columns:150px 1fr;gap:2px 12px;margin:6px 0}
dt{color:#5b6675}dd{margin:0;overflow-wrap:anywhere}svg{display:block;margin:6px 0}
.bin{margin:10px 0 14px;padding:8px 12px;background:#f8f9fb;border-left:3px solid #a4161a}
"""


def _num(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _spikes(bins: Iterable[Row]) -> list[Row]:
    return [row for row in bins if _num(row.get("is_spike"))]


def entity_key(row: Row) -> tuple[str, str, str]:
    return str(row.get("entity_type", "")), str(row.get("account", "")), str(row.get("principal", ""))


def flagged_entities(rows: Iterable[Row]) -> dict[tuple[str, str, str], list[Row]]:
    """Every bin of each entity with at least one spike, in time order, most severe first."""
    series: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        series.setdefault(entity_key(row), []).append(row)
    flagged = {key: bins for key, bins in series.items() if _spikes(bins)}
    for bins in flagged.values():
        bins.sort(key=lambda r: _num(r.get("_time")))
    return dict(
        sorted(
            flagged.items(),
            key=lambda item: (
                -max(_num(r.get("score")) for r in item[1] if _num(r.get("is_spike"))),
                item[0],
            ),
        )
    )


def merge_top(values: Iterable[object], n: int = 8) -> list[tuple[str, int]]:
    """Sum ``name (count), ...`` lists (the engine's top_* fields) into the ``n`` largest."""
    totals: dict[str, int] = {}
    for value in values:
        for match in _TOP_ITEM.finditer(str(value or "")):
            totals[match.group(1)] = totals.get(match.group(1), 0) + int(match.group(2))
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:n]


# ------------------------------------------------------------------------------------- chart


def _bucket(bins: Sequence[Row], columns: int) -> list[tuple[float, float, float, float, bool]]:
    """``(start, failures, expected, upper, spike)`` per column: max of failures and upper, mean of
    expected, spike if any bin in the column is one."""
    size = max(1, math.ceil(len(bins) / columns))
    out = []
    for start in range(0, len(bins), size):
        group = bins[start : start + size]
        out.append(
            (
                _num(group[0].get("_time")),
                max(_num(r.get("failures")) for r in group),
                sum(_num(r.get("expected")) for r in group) / len(group),
                max(_num(r.get("upper")) for r in group),
                any(_num(r.get("is_spike")) for r in group),
            )
        )
    return out


def _nice_step(top: float, ticks: int = 4) -> float:
    raw = max(top, 1.0) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def chart(bins: Sequence[Row], span: int, title: str, width: int = 1060, height: int = 230) -> str:
    """Inline SVG: failures as bars (spikes red), expected as a line, the band up to upper."""
    columns = _bucket(bins, MAX_COLUMNS)
    left, right, top, bottom = 52, 10, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    step = _nice_step(max(max(c[1] for c in columns), max(c[3] for c in columns)))
    y_max = step * math.ceil(max(max(c[1] for c in columns), max(c[3] for c in columns), 1.0) / step)
    col_w = plot_w / len(columns)

    def x(i: float) -> float:
        return left + i * col_w

    def y(v: float) -> float:
        return top + plot_h - plot_h * min(v, y_max) / y_max

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"'
        f' aria-label="{_esc(title)}" font-size="11" font-family="system-ui,sans-serif">',
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{_esc(title)}</text>',
    ]
    value = 0.0
    while value <= y_max + 1e-9:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}"'
            ' stroke="#e4e8ee"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" fill="#5b6675">{value:g}</text>'
        )
        value += step
    band = [f"{x(i + 0.5):.1f},{y(c[3]):.1f}" for i, c in enumerate(columns)]
    band += [f"{x(i + 0.5):.1f},{y(c[2]):.1f}" for i, c in reversed(list(enumerate(columns)))]
    parts.append(f'<polygon points="{" ".join(band)}" fill="#fbe3c4" stroke="none"/>')
    bar = min(max(col_w * 0.8, 0.6), 28.0)
    for spike, colour in ((False, "#8a94a3"), (True, "#c92a2a")):
        path = "".join(
            f"M{x(i + 0.5) - bar / 2:.1f} {y(0):.1f}V{y(c[1]):.1f}h{bar:.2f}V{y(0):.1f}z"
            for i, c in enumerate(columns)
            if c[4] == spike and c[1] > 0
        )
        if path:
            parts.append(f'<path d="{path}" fill="{colour}"/>')
    upper = " ".join(f"{x(i + 0.5):.1f},{y(c[3]):.1f}" for i, c in enumerate(columns))
    expected = " ".join(f"{x(i + 0.5):.1f},{y(c[2]):.1f}" for i, c in enumerate(columns))
    parts.append(f'<polyline points="{upper}" fill="none" stroke="#e8590c" stroke-dasharray="4 3"/>')
    parts.append(f'<polyline points="{expected}" fill="none" stroke="#1c7ed6" stroke-width="1.5"/>')
    for i, c in enumerate(columns):
        if c[4]:
            parts.append(
                f'<circle cx="{x(i + 0.5):.1f}" cy="{y(c[1]):.1f}" r="3" fill="#c92a2a">'
                f"<title>{_iso(c[0])}: {c[1]:g} failures, expected {c[2]:g}, upper {c[3]:g}</title></circle>"
            )
    ticks = 6
    for k in range(ticks + 1):
        i = min(len(columns) - 1, round(k * (len(columns) - 1) / ticks))
        anchor = "start" if k == 0 else "end" if k == ticks else "middle"
        parts.append(
            f'<text x="{x(i + 0.5):.1f}" y="{height - 16}" text-anchor="{anchor}" fill="#5b6675">'
            f"{_esc(_iso(columns[i][0])[:16])}</text>"
        )
    per = f" (one bar = max of {math.ceil(len(bins) / MAX_COLUMNS)} bins)" if len(columns) < len(bins) else ""
    legend = [("#8a94a3", "failures"), ("#c92a2a", "spike"), ("#1c7ed6", "expected"), ("#e8590c", "upper")]
    lx = left
    for colour, name in legend:
        parts.append(
            f'<rect x="{lx}" y="{height - 10}" width="10" height="8" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{height - 2}">{name}</text>'
        )
        lx += 24 + 7 * len(name)
    parts.append(f'<text x="{lx}" y="{height - 2}" fill="#5b6675">span {span // 60} min{per}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -------------------------------------------------------------------------------------- page


def _entity_title(key: tuple[str, str, str]) -> str:
    entity_type, account, principal = key
    return principal if entity_type == "principal" else f"account {account}"


def _severity(value: object) -> str:
    name = re.sub(r"[^a-z]", "", str(value).lower()) or "none"
    return f'<span class="sev {name}">{_esc(value)}</span>'


def _entity_section(key: tuple[str, str, str], bins: Sequence[Row], span: int, anchor: str) -> str:
    spikes = _spikes(bins)
    best = max(spikes, key=lambda r: _num(r.get("score")))
    title = _entity_title(key)
    out = [
        f'<h2 id="{anchor}">{_esc(title)}</h2>',
        f'<div class="sub">{_esc(key[0])} in account {_esc(key[1])}: {len(spikes)} flagged bin'
        f"{'' if len(spikes) == 1 else 's'} of {len(bins)}, highest score {_num(best.get('score')):g}"
        f" {_severity(best.get('severity', ''))}</div>",
        chart(bins, span, f"{title}: failures per bin against expected and upper, whole window"),
    ]
    if len(bins) > MAX_COLUMNS:
        at = bins.index(best)
        zoom = bins[max(0, at - ZOOM_BINS) : at + ZOOM_BINS + 1]
        out.append(chart(zoom, span, f"zoom: {len(zoom)} bins around {_iso(_num(best.get('_time')))}"))
    out.append("<dl>")
    for field, label in TOP_FIELDS:
        merged = merge_top(r.get(field) for r in spikes)
        text = ", ".join(f"{name} ({count})" for name, count in merged) or "none"
        out.append(f"<dt>top {_esc(label)}</dt><dd>{_esc(text)}</dd>")
    out.append("</dl>")
    shown = sorted(spikes, key=lambda r: -_num(r.get("score")))[:MAX_EXPLAINED]
    if len(spikes) > len(shown):
        out.append(f'<div class="sub">the {len(shown)} highest-scoring of {len(spikes)} flagged bins:</div>')
    for row in sorted(shown, key=lambda r: _num(r.get("_time"))):
        out.append(
            f'<div class="bin"><b>{_esc(_iso(_num(row.get("_time"))))}</b>: {_num(row.get("failures")):g}'
            f" failures, expected {_num(row.get('expected')):g}, upper {_num(row.get('upper')):g},"
            f" score {_num(row.get('score')):g} {_severity(row.get('severity', ''))}<dl>"
        )
        for field in EXPLANATION_FIELDS:
            if row.get(field):
                out.append(f"<dt>{_esc(field)}</dt><dd>{_esc(row.get(field))}</dd>")
        out.append("</dl></div>")
    return "\n".join(out)


def render(rows: Sequence[Row], options: Options, read: str, generated: float | None = None) -> str:
    """The whole page as text."""
    flagged = flagged_entities(rows)
    spikes = sorted(
        (r for bins in flagged.values() for r in bins if _num(r.get("is_spike"))),
        key=lambda r: (_num(r.get("_time")), entity_key(r)),
    )
    settings = " ".join(
        f"{f.name}={option_text(f.name, getattr(options, f.name))}"
        for f in dataclasses.fields(options)
        if f.compare and f.name != "phase"
    )
    when = _iso(time.time() if generated is None else generated)
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>iamspike report: {len(spikes)} spikes</title><style>{_STYLE}</style></head><body>",
        "<h1>Spikes of failed AWS API calls</h1>",
        f'<div class="sub">iamspike report generated {_esc(when)} from {_esc(read)};'
        f" {plural(len(spikes), 'flagged bin')} in {plural(len(flagged), 'entity', 'entities')}."
        f"<br>Options: {_esc(settings)}</div>",
    ]
    if not spikes:
        return "\n".join([*head, "<p>No spikes.</p></body></html>"]) + "\n"
    anchors = {key: f"e{n}" for n, key in enumerate(flagged, 1)}
    table = [
        "<table><tr><th>_time</th><th>entity</th><th>account</th><th>principal</th><th>failures</th>"
        "<th>expected</th><th>upper</th><th>score</th><th>severity</th></tr>"
    ]
    for r in spikes:
        table.append(
            f"<tr><td>{_esc(_iso(_num(r.get('_time'))))}</td><td>{_esc(r.get('entity_type', ''))}</td>"
            f"<td>{_esc(r.get('account', ''))}</td>"
            f'<td><a href="#{anchors[entity_key(r)]}">{_esc(r.get("principal", "") or "-")}</a></td>'
            + "".join(
                f'<td class="n">{_num(r.get(f)):g}</td>' for f in ("failures", "expected", "upper", "score")
            )
            + f"<td>{_severity(r.get('severity', ''))}</td></tr>"
        )
    table.append("</table>")
    sections = [_entity_section(key, bins, options.span, anchors[key]) for key, bins in flagged.items()]
    return "\n".join([*head, *table, *sections, "</body></html>"]) + "\n"


def write(path: str, part: str, rows: Sequence[Row], options: Options, read: str) -> None:
    """Write :func:`render` into ``part`` (from :func:`iamspike.atomic.reserve`), then rename it to
    ``path``: the page appears whole or not at all."""
    atomic.finish(part, path, render(rows, options, read).encode("utf-8"))
