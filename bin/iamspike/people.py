"""People's breadth: how many APIs' worth a person's failures in a bin are (docs/engine.md, section 5).

A person (``principals.is_person``) fails in the ways people work: a command retried, a console
page that loads a handful of APIs of one service at once, a busier hour on the APIs they always
use. Stolen keys sweep APIs across services that their owner never called. So, for people only:

- the **effective number of APIs** of a cell's failures, ``(sum n)^2 / sum n^2``: 14 retries of one
  command and one stray denial elsewhere are 1.1 APIs, not 2 (rule P15);
- a **page load** (rule P20): failures that all sit in one service, or all came through the AWS
  console, are at most ``PAGE_APIS`` (2) APIs' worth and earn no novelty bonus: a console page's
  loads (grycap's students: 18 ``UnauthorizedOperation`` in 7 s over 4-13 EC2 ``Describe*`` APIs)
  are one thing the person did, not a sweep;
- **known APIs** (rule P20): from silence, a person watched long enough to know its APIs
  (``results.NOVELTY_HISTORY``) whose bin fails only on APIs it has failed on before counts no
  more APIs than its usual breadth: a busier hour of its own work (a lab session at several times
  its rate), not a sweep.
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


# A page load is at most this many APIs' worth: narrow (below flags.NARROW_APIS).
PAGE_APIS = 2.0
# User agents of calls made through the AWS console (the console's own backend calls included).
CONSOLE_AGENTS = ("console", "signin.amazonaws.com", "aws internal", "aws-internal/")


def through_console(user_agents: dict[str, int]) -> bool:
    """Whether every failure of a cell came through the AWS console."""
    return bool(user_agents) and all(agent.lower().startswith(CONSOLE_AGENTS) for agent in user_agents)


def page_load(services: dict[str, int], user_agents: dict[str, int]) -> bool:
    """A person's cell whose failures are all on one service, or all through the console: what a
    console page (or one command) does, not a sweep."""
    return len(services) == 1 or through_console(user_agents)


def cell_breadth(apis: dict[str, int], page: bool) -> float:
    """A person's APIs' worth in one cell (from its explanation's counters): the effective number
    of APIs, at most ``PAGE_APIS`` where the cell is a ``page_load``."""
    worth = effective_apis(apis.values())
    return min(worth, PAGE_APIS) if page else worth


def person_breadth(
    apis: np.ndarray,
    new_apis: np.ndarray,
    typical_apis: np.ndarray,
    known: np.ndarray,
    page: np.ndarray,
    novelty_free: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct APIs, new APIs) of people's cells as the scoring weighs them. Where ``known`` (a
    silent person watched long enough to know its APIs) and no API is new to it, its distinct APIs
    count no more than its usual breadth (``typical_apis``, at least 1); where ``page`` (a
    ``page_load``), the new APIs count no more than ``novelty_free`` (no novelty bonus, though the
    cell is still not one of its usual bursts). Elsewhere both as given."""
    apis = np.asarray(apis, dtype=np.float64)
    new = np.asarray(new_apis, dtype=np.float64)
    usual = np.maximum(np.asarray(typical_apis, dtype=np.float64), 1.0)
    apis = np.where(known & (new <= 0), np.minimum(apis, usual), apis)
    new = np.where(page, np.minimum(new, novelty_free), new)
    return apis, new
