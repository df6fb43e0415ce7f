"""The results pass: counts and saved state -> matrices -> baselines -> scores -> output rows.

Runs once, in ``Detector.results()``: numbers every principal and account, zero-fills their
series over the whole time range (live rows and saved state), fits the baselines, scores every
bin (``flags``) and builds the rows of the flagged ones with their explanations (``explain``).
With ``show=state`` it returns the state rows instead, without matrices (``statefold``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace

import numpy as np

from iamspike import bins, explain, minutes, newcomers, rare, repeaters, state, statefold
from iamspike.accounts import account_series, covered_accounts, live_offset, source_items, source_masks
from iamspike.baseline import BaselineParams, fit_baselines, fit_together
from iamspike.counting import Tally
from iamspike.countrows import CountRows
from iamspike.daylevel import day_level_note
from iamspike.failures import CONSOLE_LOGIN_FAILURE
from iamspike.flags import PassView, flag
from iamspike.intake import is_service
from iamspike.options import Options, span_text
from iamspike.principals import is_person
from iamspike.reruns import note as rerun_note
from iamspike.runhistory import LongRun
from iamspike.scoring import severity
from iamspike.secretapis import secret_apis
from iamspike.sensitive import reads_note
from iamspike.siblings import note as sibling_note
from iamspike.spread import Spread, actor_name, principal_groups, quiet_failures, spread_note
from iamspike.steady import steady_note
from iamspike.straddle import live_pairs, straddle_note
from iamspike.tail import record_note

# An API a principal fails on is "new" when the principal's failures have been watched for this
# long before (its first failure in the data or the saved state) and never touched that API.
NOVELTY_HISTORY = 3 * 86400


MAX_CELLS = 60_000_000  # bins x principals kept in memory; older bins are dropped beyond it


def kept_bins(options: Options, n_principals: int) -> int:
    """The most bins a pass keeps for this many principals: the kept ``history`` and one bin, or
    more where ``MAX_CELLS`` allows."""
    return max(options.history // options.span + 1, MAX_CELLS // max(n_principals, 1))


def too_long(options: Options, n_bins: int, n_principals: int) -> str:
    """The message when a range has more bins than are kept for this many principals, or ''."""
    max_bins = kept_bins(options, n_principals)
    if n_bins <= max_bins:
        return ""
    return (
        f"time range of {n_bins} bins is too long for {n_principals} principals;"
        f" only the last {max_bins} bins are used"
    )


class ResultsPass:
    """One results() pass over a Tally and the state entries read."""

    def __init__(
        self,
        options: Options,
        tally: Tally,
        entries: Sequence[state.StateEntry],
        messages: list[str],
        count_rows: CountRows | None = None,
    ) -> None:
        self.o = options
        self.tally = tally
        self.count_rows = count_rows if count_rows is not None else CountRows(tally)
        self.entries = [e for e in entries if e.entity_type == state.PRINCIPAL]
        self.account_entries = [e for e in entries if e.entity_type == state.ACCOUNT]
        self.ranges = [e for e in entries if e.entity_type == state.RANGE]
        self.messages = messages
        self.baseline_params = BaselineParams()  # set per run in rows()
        self.person = self.one_actor = self.p_actor = None  # set per run in rows()
        self.principal_scores = (np.zeros(0, dtype=np.int64), np.zeros(0))  # none till flagged
        self.reruns = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))  # (P45) none till flagged

    # ---- entities and the live keys as arrays

    def _entities(self) -> None:
        """The live counts as parallel item arrays (bin, principal, API id, failures, failed
        console sign-ins): one item per key the Tally holds (``n_keys`` of them), then one per
        (count row, API) of the count rows read from their summaries, the row's failures and
        console sign-ins on its first item (``k_explain`` marks the items that explain a cell)."""
        span = self.o.span
        self.principals: dict[tuple[str, str], int] = {}
        self.accounts: dict[str, int] = {}
        self.p_account: list[int] = []
        self.p_service: list[bool] = []
        counts = self.tally.counts
        rows = self.count_rows
        services, row_entities, row_services = self.tally.services, rows.entities, rows.services

        def service(entity: tuple[str, str]) -> bool:
            return services.get(entity, False) or row_entities.get(entity) in row_services

        self.keys = list(counts)
        api_ids: dict[str, int] = {}
        k_p, k_api = [], []
        for key in self.keys:
            p = self.principals.get(key[1:3])
            if p is None:
                p = self._principal(key[1], key[2], service(key[1:3]))
            k_p.append(p)
            a = api_ids.get(key[4])
            if a is None:
                a = api_ids[key[4]] = len(api_ids)
            k_api.append(a)
        n = self.n_keys = len(self.keys)
        self.api_ids = api_ids
        self.key_counts = list(counts.values())  # in the order of ``keys`` (explain.CellDetail)
        k_count = np.fromiter(self.key_counts, dtype=np.float64, count=n)
        k_console = np.fromiter((key[5] == CONSOLE_LOGIN_FAILURE for key in self.keys), dtype=bool, count=n)
        fast = rows.fast if len(rows.fast) == len(rows) else np.ones(len(rows), dtype=bool)
        per_row = np.frombuffer(rows.n_apis, dtype=np.uint16) if len(rows) else np.zeros(0, np.uint16)
        per_row = per_row.astype(np.int64)
        in_item = np.repeat(fast, per_row)
        self.item_row = np.repeat(np.arange(len(rows), dtype=np.int64), per_row)[in_item]
        starts = np.zeros(len(in_item), dtype=bool)
        starts[(np.cumsum(per_row) - per_row)[per_row > 0]] = True
        first = starts[in_item]
        r_entity = np.frombuffer(rows.entity, dtype=np.int32) if len(rows) else np.zeros(0, np.int32)
        labels = rows.labels()
        to_p = np.full(len(labels), -1, dtype=np.int64)
        for e in bins.sorted_unique(r_entity[fast]).tolist():
            to_p[e] = self._principal(*labels[e], service(labels[e]))
        to_api = np.array(
            [api_ids.setdefault(name, len(api_ids)) for name in rows.api_names], dtype=np.int64
        ).reshape(-1)
        item_api = to_api[np.frombuffer(rows.apis, dtype=np.int32)[in_item]] if len(rows) else to_api[:0]
        row_of = self.item_row
        r_bins = np.frombuffer(rows.bins, dtype=np.int32) if len(rows) else np.zeros(0, np.int32)
        r_failures = np.frombuffer(rows.failures, dtype=np.int32) if len(rows) else r_bins
        r_console = np.frombuffer(rows.console, dtype=np.int32) if len(rows) else r_bins
        self.k_bin = np.concatenate(
            [np.fromiter((key[0] // span for key in self.keys), dtype=np.int64, count=n), r_bins[row_of]]
        )
        self.k_p = np.concatenate([np.array(k_p, dtype=np.int64), to_p[r_entity[row_of]]])
        self.k_api = np.concatenate([np.array(k_api, dtype=np.int64), item_api])
        self.k_count = np.concatenate([k_count, np.where(first, r_failures[row_of], 0).astype(np.float64)])
        self.k_console = np.concatenate(
            [np.where(k_console, k_count, 0.0), np.where(first, r_console[row_of], 0).astype(np.float64)]
        )
        self.k_explain = np.concatenate([np.ones(n, dtype=bool), first])
        self.n_apis = max(len(api_ids), 1)

    def _principal(self, account: str, principal: str, service: bool | None = None) -> int:
        p = self.principals.get((account, principal))
        if p is None:
            a = self.accounts.setdefault(account, len(self.accounts))
            p = self.principals[(account, principal)] = len(self.principals)
            self.p_account.append(a)
            self.p_service.append(bool(service) if service is not None else is_service(principal))
        return p

    def _distinct_apis(self, n_bins: int, n_principals: int) -> np.ndarray:
        """Distinct APIs per (bin, principal) from the live keys, ``(bins, principals)``."""
        matrix = np.zeros((n_bins, n_principals), dtype=np.float32)
        t = self.k_bin - self.first
        keep = (t >= 0) & (t < n_bins)
        if keep.any():
            cell = t[keep] * n_principals + self.k_p[keep]
            triples = bins.sorted_unique(cell * self.n_apis + self.k_api[keep])
            cells, per_cell = np.unique(triples // self.n_apis, return_counts=True)
            matrix.reshape(-1)[cells] = per_cell
        return matrix

    # ---- novelty: first failures of an API by a principal

    def _novelty(self, s_first: list[tuple[int, int, int]], n_principals: int) -> None:
        """The (principal, API) pairs that fail for the first time, from the live keys and the saved
        state's first failures (``s_first``: principal, API id, bin): ``self.first_fail`` holds each
        pair's first bin as arrays (principal, API, bin) sorted by principal, and
        ``self.new_cells`` / ``self.new_apis`` list, sorted by cell (bin offset * principals +
        principal), the pairs that are new in a cell of the matrix: first failure at least
        ``NOVELTY_HISTORY`` after the principal's first failure."""
        self.api_names = list(self.api_ids)
        self.history = max(1, NOVELTY_HISTORY // self.o.span)
        empty = np.zeros(0, dtype=np.int64)
        self.first_fail = (empty, empty, empty)
        self.new_cells = self.new_apis = empty
        self.watched = np.full(n_principals, np.iinfo(np.int64).max, dtype=np.int64)
        principal, api, when = statefold.first_failures(self, s_first)
        if not len(principal):
            return
        self.first_fail = (principal, api, when)
        np.minimum.at(self.watched, principal, when)
        new = (when - self.watched[principal] >= self.history) & (when >= self.first)
        cells = (when[new] - self.first) * n_principals + principal[new]
        order = np.argsort(cells, kind="stable")
        self.new_cells, self.new_apis = cells[order], api[new][order]

    def _new_names(self, t: int, e: int) -> list[str]:
        names = self.api_names
        cell = t * len(self.principals) + e
        lo, hi = np.searchsorted(self.new_cells, [cell, cell + 1])
        return sorted(names[a] for a in self.new_apis[lo:hi].tolist())

    def _explainer(self, entity_of_key: np.ndarray, keep: np.ndarray) -> explain.CellDetail:
        """(entity, bin offset) -> CellExplain over the live keys and count rows of that cell."""
        n_bins = self.n_bins
        idx = np.flatnonzero(keep & (self.k_bin >= self.first) & self.k_explain)
        cell = entity_of_key[idx] * n_bins + (self.k_bin[idx] - self.first)
        order = np.argsort(cell, kind="stable")
        return explain.CellDetail(idx[order], cell[order], n_bins, self)

    # ---- the pass

    def rows(self) -> list[dict[str, object]]:
        o, tally = self.o, self.tally
        span = o.span
        self._entities()
        has_live = tally.lo <= tally.hi
        live_first = int(tally.lo // span) if has_live else None
        live_last = int(tally.hi // span) if has_live else None
        saved = self.entries + self.account_entries + self.ranges
        for entry in self.account_entries:
            self.accounts.setdefault(entry.account, len(self.accounts))
        firsts = [e.first // span for e in saved]
        lasts = [e.last // span for e in saved]
        if not has_live and not firsts:
            return []
        first = min([*firsts, *([live_first] if has_live else [])])
        # The window ends with the live rows: saved bins at or after the first live bin are dropped
        # below, so a saved state that ends later (a report over a past range) adds no bins.
        last = live_last if live_last is not None else max(lasts)
        # State history: only bins before the live rows (the live rows win where they overlap).
        s_bin, s_entity, s_count, s_apis = [], [], [], []
        s_first: list[tuple[int, int, int]] = []
        for entry in self.entries:
            p = self._principal(entry.account, entry.principal)
            for api, start in entry.first_failures.items():
                a = self.api_ids.setdefault(api, len(self.api_ids))
                s_first.append((p, a, start // span))
            for start, count in entry.bins.items():
                b = start // span
                if live_first is not None and b >= live_first:
                    continue
                s_bin.append(b)
                s_entity.append(p)
                s_count.append(count)
                s_apis.append(entry.distinct_apis.get(start, 1))
        n_principals = len(self.principals)
        n_bins = last - first + 1
        max_bins = kept_bins(o, n_principals)
        if n_bins > max_bins:
            self.messages.append(too_long(o, n_bins, n_principals))
            first = last - max_bins + 1
            n_bins = max_bins
        if o.show == "state":  # an aggregation: no matrices (statefold)
            self.first, self.n_bins = first, n_bins
            return statefold.state_rows(self, (s_bin, s_entity, s_count, s_apis), s_first, live_first)
        all_b = np.concatenate([self.k_bin, np.array(s_bin, dtype=np.int64)]) - first
        all_e = np.concatenate([self.k_p, np.array(s_entity, dtype=np.int64)])
        all_c = np.concatenate([self.k_count, np.array(s_count, dtype=np.float64)])
        keep = all_b >= 0
        counts = bins.dense_counts(all_b[keep], all_e[keep], all_c[keep], n_bins, n_principals)
        self.first, self.n_bins = first, n_bins
        self._novelty(s_first, n_principals)
        distinct_apis = self._distinct_apis(n_bins, n_principals)
        state_b = np.array(s_bin, dtype=np.int64) - first
        restored = state_b >= 0
        s_entity_arr = np.array(s_entity, dtype=np.int64)
        distinct_apis[state_b[restored], s_entity_arr[restored]] = np.array(s_apis, dtype=np.float32)[
            restored
        ]
        p_account = np.array(self.p_account, dtype=np.int64)
        service = np.array(self.p_service, dtype=bool)
        accounts = None
        if "account" in o.by:
            restored_rows = (state_b[restored], s_entity_arr[restored], np.array(s_count)[restored])
            live_items = source_items(self)  # the live cells' event sources, read once
            accounts, self.p_actor, a_group, sources = account_series(
                self, counts, distinct_apis, p_account, service, live_first, restored_rows, live_items
            )
        out_from = live_offset(first, n_bins, live_first)
        params = self.baseline_params = BaselineParams(
            half_life_bins=rare.half_life_bins(o), min_history_bins=int(o.min_history // span)
        )
        rows: list[dict[str, object]] = []
        if "principal" in o.by and n_principals:
            # Low-and-slow runs (runs.py, P22) from the output's first bin, once watched 3 days.
            since = np.minimum(self.watched - first, n_bins) + self.history
            hours = (np.arange(n_bins, dtype=np.int64) + first) * span // 3600 % 24  # P27's hours of the day
            long_run = LongRun(np.where(service, n_bins, since), out_from, hour_of_day=hours)
            base = fit_baselines(counts, first * span, span, p_account, params, distinct_apis, True, long_run)
            labels = [key for key, _ in sorted(self.principals.items(), key=lambda item: item[1])]
            cells = self._explainer(self.k_p, np.ones(len(self.k_p), dtype=bool))
            # The onset hold-down is for automation: AWS service principals keep the fixed cap;
            # other principals are held down less the further the count is above min_failures;
            # bins where failed console sign-ins alone reach min_failures are not held down.
            onset_mean = np.where(service, 0.0, float(o.min_failures))
            self.person = np.array([is_person(principal) for _, principal in labels], dtype=bool)
            rows += self._flagged_rows(
                "principal", counts, distinct_apis, base, labels, cells, out_from, onset=onset_mean
            )
        if accounts is not None and self.accounts:
            del distinct_apis
            # An account cell one actor makes is capped at that actor's score (spread.one_actor_cap).
            self.one_actor = (counts, p_account, service) if "principal" in o.by and n_principals else None
            acc_counts, acc_apis, acc_spread, same = accounts
            # The failures of its silent principals (spread.quiet_failures; needs their baselines).
            quiet = self.one_actor and quiet_failures(acc_counts, counts, base.silent, p_account, service)
            # Quiet principals failing repeatedly on one source (repeaters, P35; the same need).
            repeat = self.one_actor and self._repeaters(
                counts, base.silent, p_account, service, out_from, live_items
            )
            # Principals failing for the first time together (newcomers, P38; the same need).
            arrived = self.one_actor and self._newcomers(
                (s_bin, s_entity), p_account, service, labels, live_first, out_from
            )
            # Several actors failing on one source within the same minutes (P39).
            clusters = self._clusters(a_group, out_from, live_items)
            del counts
            # The account matrices are fitted two at a time (fit_together: the numbers of one fit each).
            fits = fit_together(
                [acc_counts, *([quiet] if quiet is not None else [])], first * span, span, params, acc_apis
            )
            base = fits[0]
            if quiet is not None:
                quiet = (quiet, fits[1])
            # Several actors failing together are no stream being absorbed: no recent view.
            spread_params = replace(params, recent_bins=0, silent_recent_bins=0)
            spread_base, same_base = fit_together([acc_spread, same], first * span, span, spread_params)
            labels = [(acct, "") for acct, _ in sorted(self.accounts.items(), key=lambda item: item[1])]
            cells = self._explainer(p_account[self.k_p], ~service[self.k_p])
            # The most actors on one service, judged as the failing actors are (spread.service_actors).
            same = (same, same_base)
            # Spreads on a service rare for the account (P29), each source against its own rate.
            found, _ = rare.run(
                *sources,
                rare.starts(self, live_first),
                first,
                n_bins,
                span,
                params.half_life_bins,
                acc_spread,
            )
            spread = Spread(acc_spread, spread_base, quiet, same, found, repeat, arrived, clusters)
            # Spreads across the turn of an hour: each live bin with the one before (P34).
            pairs = live_pairs(self, acc_counts, acc_apis, a_group, live_first, live_items)
            rows += self._flagged_rows(
                "account", acc_counts, acc_apis, base, labels, cells, out_from, spread, straddle=pairs
            )
        rows.sort(key=lambda r: (r["_time"], r["entity_type"] != "account", r["account"], r["principal"]))
        return rows

    def _repeaters(self, counts, silent, p_account, service, out_from, items) -> repeaters.Repeaters:
        """The account cells' quiet principals failing repeatedly on one source (``repeaters``;
        ``items``: ``accounts.source_items``)."""
        t, p, src, names = items
        n_accounts = len(self.accounts)
        group = principal_groups(p_account, service, n_accounts)
        return repeaters.find(
            (t - self.first, p, src), names, counts, silent, self.p_actor, group, n_accounts, out_from
        )

    def _newcomers(self, saved, p_account, service, labels, live_first, out_from) -> newcomers.Newcomers:
        """The account cells' principals failing for the first time (``newcomers``; ``saved``: the
        saved rows' bins and principals, ``labels`` the principals' (account, principal))."""
        s_bin, s_entity = saved
        n_accounts = len(self.accounts)
        seen = newcomers.first_seen(
            np.concatenate([self.k_bin, np.asarray(s_bin, dtype=np.int64)]),
            np.concatenate([self.k_p, np.asarray(s_entity, dtype=np.int64)]),
            len(self.principals),
        )
        seen = np.minimum(seen, self.watched)  # the saved first failures (novelty's watch)
        eligible = ~service & np.array([actor_name(p) == p for _, p in labels], dtype=bool)
        saved_watch = rare.starts(self, live_first)[0]  # an account row's watch
        since = np.where(covered_accounts(self)[:n_accounts], saved_watch, newcomers.NEVER)
        group = principal_groups(p_account, service, n_accounts)
        return newcomers.find(seen, eligible, group, since, self.first, self.n_bins, self.history, out_from)

    def _clusters(self, a_group, out_from, items) -> minutes.Clusters:
        """Each account cell's largest cluster of actors failing on one event source within the
        same minutes (P39), where the account has been watched ``history`` (its principals' first
        failures, as P38's); ``items``: ``accounts.source_items``."""
        t, p, src, names = items
        masks = source_masks(self)
        n_accounts = len(self.accounts)
        found = minutes.find(
            (t - self.first, p, masks, src), self.p_actor, a_group, n_accounts, self.n_bins, names, out_from
        )
        if len(found.cell):
            watch = np.full(n_accounts + 1, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(watch, np.array(self.p_account, dtype=np.int64), self.watched)
            ct, ce = found.cell // n_accounts, found.cell % n_accounts
            ok = (ct + self.first) - watch[ce] >= self.history
            found = minutes.Clusters(
                found.cell[ok], found.actors[ok], [n for n, y in zip(found.source, ok) if y]
            )
        return found

    def _view(self) -> PassView:
        """What ``flags.flag`` reads of this pass: the attributes ``PassView`` names."""
        return PassView(**{f.name: getattr(self, f.name) for f in fields(PassView)})

    def _flagged_rows(
        self,
        entity_type,
        counts,
        distinct_apis,
        base,
        labels,
        cells,
        out_from,
        spread=None,
        onset=None,
        straddle=None,
    ):
        """The output rows of the cells ``flags.flag`` picks, with their reasons and explanations."""
        f = flag(self._view(), counts, distinct_apis, base, cells, out_from, spread, onset, straddle)
        if f is not None and f.principal_scores is not None:
            self.principal_scores = f.principal_scores
        if f is not None and f.reruns is not None:
            self.reruns = f.reruns
        if f is None or not len(f.pick):
            return []
        o = self.o
        t_idx, e_idx, observed, scored = f.t_idx, f.e_idx, f.observed, f.scored
        score, flagged, pick, upper = f.score, f.flagged, f.pick, f.upper
        rate, by_rate, runs, run, console, hold = f.rate, f.by_rate, f.runs, f.run, f.console, f.hold
        usual_burst, record, new_apis = f.usual_burst, f.record, f.new_apis
        spread_score, both, capped = f.spread_score, f.both, f.capped
        rows = []
        span = o.span
        cells.prefetch(e_idx[pick], t_idx[pick])
        for n, i in enumerate(pick.tolist()):
            t, e = int(t_idx[i]), int(e_idx[i])
            cell = cells(e, t)
            account, principal = labels[e]
            failures = int(observed[i])
            expected = float(scored.expected[i])
            up = float(upper[n])
            is_spike = bool(flagged[i])
            insufficient = bool(base.insufficient[t])
            notes = []
            if f.pair is not None and f.pair[i] > 0:  # decided by its pair with the bin before (P34)
                notes.append(straddle_note(straddle, spread, t, e, (t + self.first - 1) * span, span))
            elif spread_score is not None and max(spread_score[i], both[i]) > scored.score[i] and is_spike:
                notes.append(spread_note(spread, t, e, f.on_one_service is not None and f.on_one_service[i]))
            others = 0.0 if spread_score is None else max(scored.score[i], spread_score[i], both[i])
            decides = is_spike and others < o.threshold  # a rule flagging at the threshold
            floor = failures >= o.min_failures  # P35's and P38's floor; below it P39 decided
            if f.repeat is not None and f.repeat[i] and decides and floor:
                notes.append(spread.repeat.note(t, e, len(labels), expected))  # P35 decided
            elif f.arrived is not None and f.arrived[i] and decides and floor:
                notes.append(spread.newcomers.note(t, e, len(labels)))  # P38 decided
            elif f.cluster is not None and f.cluster[i] and decides:
                notes.append(spread.minutes.note(t, e, len(labels), span))  # P39 decided
            if capped is not None and i in capped:
                notes.append(capped[i])
            if by_rate is not None and by_rate[i] > scored.score[i] and by_rate[i] >= o.threshold:
                notes.append(
                    f"{failures} is {failures / max(rate[i], 1.0):.0f} times its recent rate"
                    f" of about {float(rate[i]):.3g} per {span_text(span)}"
                )
            if onset is not None and run[i] >= 0:
                notes.append(runs.note(run[i], span_text(span)))
            rerun = f.rerun is not None and f.rerun[i] >= 0  # held as a re-run (P43)
            if scored.lifted[i] and failures > 0 and not rerun:
                if console is not None and not hold[i] and console[i] < o.min_failures:
                    why = reads_note(cell.apis, secret_apis(o.lookup))  # a machine's reads of secrets (P25)
                elif console is not None and not hold[i]:
                    why = f"{int(console[i])} of them are failed console sign-ins, typed by a person"
                else:
                    why = (
                        f"{failures} at once are too many for a routine start (min_failures {o.min_failures})"
                    )
                notes.append(f"it had no failures before, and {why}")
            if onset is not None and usual_burst[i]:
                size = float(base.burst_size[t, e])
                if is_spike:
                    notes.append(
                        f"{failures} is {failures / size:.1f} times its usual bursts of about {size:.0f}"
                    )
                else:
                    notes.append(f"it bursts like this now and then (about {size:.0f} failures at a time)")
            if rerun:
                notes.append(rerun_note(counts, distinct_apis, t, e, int(f.rerun[i]), span))
            if f.sibling is not None and f.sibling[0][i] >= 0:  # follows its role elsewhere (P46)
                sib = int(f.sibling[0][i])
                where = labels[sib][0]
                notes.append(sibling_note(counts, distinct_apis, t, sib, int(f.sibling[1][i]), where, span))
            if record is not None and record[i]:
                notes.append(record_note(failures))
            if f.steady is not None and f.steady[0][i] > max(scored.score[i], by_rate[i]) and is_spike:
                bins_i = int(f.steady[1][i])
                window = _window_sum(counts, t, e, bins_i, observed[i])
                notes.append(steady_note(window, bins_i, float(f.steady[2][i]), span_text(span)))
            if (
                f.day_level is not None
                and is_spike
                and f.day_level[0][i] > max(scored.score[i], by_rate[i], f.steady[0][i])
            ):  # P52: its level today decided
                bins_i = int(f.day_level[1][i])
                window = _window_sum(counts, t, e, bins_i, observed[i])
                notes.append(day_level_note(window, bins_i, float(f.day_level[2][i]), span_text(span)))
            if new_apis is not None and new_apis[i] > 0:
                names = self._new_names(t, e)
                shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                notes.append(f"first failures on {shown} for this principal")
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
                **explain.explain(
                    cell,
                    account,
                    principal,
                    failures,
                    span_text(span),
                    expected,
                    up,
                    bool(scored.onset[i] and not scored.lifted[i]) and failures > 0,
                    int(base.history_bins[t]) if insufficient else None,
                    int(base.peers[e]) - 1 if insufficient else 0,
                    int(base.seasonal_samples[t]),
                    notes,
                ),
            }
            if o.show == "all":
                row["is_spike"] = int(is_spike)
            rows.append(row)
        return rows


def _window_sum(counts, t: int, e: int, bins_: int, observed) -> float:
    """Failures of entity ``e`` in the window of ``bins_`` bins ending at bin ``t`` (a window
    rule's, P32/P36/P52); one bin is the cell's own ``observed``."""
    return float(observed) if bins_ <= 1 else float(counts[t - bins_ + 1 : t + 1, e].sum())
