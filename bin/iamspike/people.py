"""People's breadth: how many APIs' worth a person's failures in a bin are (docs/engine.md, section 5).

A person (``principals.is_person``) fails in the ways people work: a command retried, a console
page that loads a handful of APIs of one service at once, a busier day on the APIs they always
use. Stolen keys sweep APIs across services that their owner never called. So, for people only:

- the **effective number of APIs** of a cell's failures, ``(sum n)^2 / sum n^2``: 14 retries of one
  command and one stray denial elsewhere are 1.1 APIs, not 2 (rule P16);
- failures that all sit in **one service** are one API's worth (rule P20): a console page's loads
  (grycap's students: 18 ``UnauthorizedOperation`` in 7 s over 4-13 EC2 ``Describe*`` APIs) are
  one thing the person did, not a sweep, and the APIs new to the person there are no novelty;
- a person watched long enough to know its APIs (``NOVELTY_HISTORY``) counts beyond its usual
  breadth only the APIs **new to it** (rule P20): failures on APIs it has failed on before are a
  busier day of its own work (a lab session at several times its rate), not a sweep.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def effective_apis(failures_per_api: Iterable[int]) -> float:
    """The effective number of APIs of a cell's failures, ``(sum n)^2 / sum n^2`` (1 when one API
    has them all, the distinct count when they are spread evenly)."""
    n = np.fromiter(failures_per_api, dtype=np.float64)
    total = float((n * n).sum())
    return float(n.sum() ** 2 / total) if total > 0 else 0.0


def cell_breadth(apis: dict[str, int], services: dict[str, int]) -> float:
    """A person's APIs' worth in one cell (from its explanation's counters): the effective number
    of APIs, or 1 where every failure is on one service."""
    worth = effective_apis(apis.values())
    return min(worth, ONE_SERVICE_APIS) if ONE_SERVICE and len(services) == 1 else worth


KNOWN = 2  # prototype switches (measured, then removed)
ONE_SERVICE = True
# A person's failures on one service are at most this many APIs' worth: narrow (results.NARROW_APIS)
ONE_SERVICE_APIS = 2.0


def person_breadth(
    apis: np.ndarray,
    new_apis: np.ndarray,
    typical_apis: np.ndarray,
    known: np.ndarray,
    one_service: np.ndarray,
    novelty_free: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct APIs, new APIs) of people's cells as the scoring weighs them. Where ``known`` (a
    person whose APIs are known), the distinct APIs beyond its usual breadth (``typical_apis``, at
    least 1) count only as far as they are new to it: ``min(apis, usual + new)``; where
    ``one_service``, the new APIs count no more than ``novelty_free`` (no novelty bonus, though
    still not one of its usual bursts). Elsewhere both as given."""
    apis = np.asarray(apis, dtype=np.float64)
    new = np.asarray(new_apis, dtype=np.float64)
    usual = np.maximum(np.asarray(typical_apis, dtype=np.float64), 1.0)
    if KNOWN == 2:
        apis = np.where(known & (new <= 0), np.minimum(apis, usual), apis)
    elif KNOWN:
        apis = np.where(known, np.minimum(apis, usual + new), apis)
    if ONE_SERVICE:
        new = np.where(one_service, np.minimum(new, novelty_free), new)
    return apis, new
