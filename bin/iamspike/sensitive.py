"""A role's denied reads of secrets (rule P25, docs/engine.md section 5).

The onset hold-down (section 5) keeps a role's failures from silence below the threshold until
about 20 in a bin: a new automation that starts failing on one or two APIs is routine, and only
the count or the breadth may lift it. Two real detonations of Stratus Red Team stayed under it:
a role denied ``DescribeInstanceAttribute`` (instances' user data, where start-up scripts keep
keys) 15 times in 2-7 seconds, on 15 instances, its first failures. What they read is what
stands out: instances' passwords and user data, and the secret stores. So a role's or root's
bin (not a person: ``principals.is_person``; not an AWS service principal) with at least
``SensitiveParams.factor`` x ``min_failures`` failures on the APIs that read secrets (``SECRET_APIS``,
or the admin's list in ``lookups/iamspike_sensitive_apis.csv``: ``secretapis``) is not held down as an
onset (as failed console sign-ins are not): its count is judged against its history alone, and
from silence it is flagged at least at the threshold (``flags.flag``): in a window's first hours
the prior of the account's other principals is no history of this one.

What it reads: the APIs' names in the cell's explanation (``explain.CellExplain.apis``), so raw
events and count rows give the same answer; request parameters (which attribute) are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from iamspike.secretapis import SECRET_APIS


@dataclass(frozen=True)
class SensitiveParams:
    factor: float = 2.0  # denied secret reads in a bin, in min_failures, that lift the hold-down


def secret_reads(apis: Mapping[str, int], secret: frozenset[str] = SECRET_APIS) -> int:
    """Failures of a cell (its per-API counts) on the APIs that read secrets (``secret``: the
    lookup's, ``secretapis.secret_apis``)."""
    return sum(n for api, n in apis.items() if api in secret)


def reads_secrets(
    machine: np.ndarray,
    observed: np.ndarray,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    cells,
    min_failures: int,
    params: SensitiveParams | None = None,
    secret: frozenset[str] = SECRET_APIS,
) -> np.ndarray:
    """Which cells (bin offset, principal) of ``machine`` principals hold at least ``factor`` x
    ``min_failures`` failures on the APIs ``secret`` (``cells``: ``explain.CellDetail``; only cells
    with that many failures in all are read)."""
    floor = (params or SensitiveParams()).factor * min_failures
    out = np.zeros(len(observed), dtype=bool)
    pick = np.flatnonzero(np.asarray(machine, dtype=bool) & (np.asarray(observed) >= floor))
    if not len(pick):
        return out
    cells.prefetch(e_idx[pick], t_idx[pick])
    for i in pick.tolist():
        out[i] = secret_reads(cells(int(e_idx[i]), int(t_idx[i])).apis, secret) >= floor
    return out


def reads_note(apis: Mapping[str, int], secret: frozenset[str] = SECRET_APIS) -> str:
    """The reason's words for a bin ``reads_secrets`` lifted: how many reads, of what."""
    names = sorted((api for api in apis if api in secret), key=lambda api: (-apis[api], api))
    return f"{secret_reads(apis, secret)} of them are denied reads of secrets ({', '.join(names)})"
