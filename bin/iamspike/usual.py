"""A principal's usual work is no sweep and no spike (rule P31, docs/engine.md section 5).

Two kinds of false alert that the tuning families showed (``--details``, then the engine's own
cells), and what sets them apart from the attacks the engine catches:

- **a machine's known APIs** (roles, root; not AWS service principals): an application role that
  fails now and then; an hour of 5-7 failures over 4-6 APIs it has failed on before scored 50-58,
  all of it the distinct-APIs bonus (on top of the onset cap from silence). Stolen credentials are
  used on APIs their owner never called (a discovery, a low-and-slow hour: new APIs, so novelty).
  So P20's rule for people holds for machines, silent or not: a machine principal watched long
  enough to know its APIs (``results.NOVELTY_HISTORY``) whose bin fails only on APIs it has failed
  on before counts no more APIs than its usual breadth (``known``);
- **a near-silent person's narrow burst**: a person whose expectation is 1-2 an hour (it fails in
  most of its working hours) and bursts 9-15 denials on one or two APIs (a command retried) is
  judged against a variance of about 1, so the count alone scored 56-78, where the same burst one
  step quieter (expected below 1: silent) is held down as an onset until about 30 failures
  (``flags.NARROW_APIS``). Such a person is held down the same way (``near_silent``), in the
  count's test and in the current-rate test; its reason does not say it had no failures before
  (``as_usual``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from iamspike.scoring import Scores

# A person's expected failures in the bin at or below which a narrow bin is held down as an onset.
NEAR_SILENT = 2.0


def known(person: np.ndarray, machine: np.ndarray, silent: np.ndarray, watched: np.ndarray) -> np.ndarray:
    """Cells whose APIs, where none is new, count no more than the principal's usual breadth
    (``people.person_breadth``): silent people (P20) and machine principals, silent or not (P31),
    whose failures have been watched long enough (``watched``)."""
    return ((np.asarray(person, dtype=bool) & silent) | np.asarray(machine, dtype=bool)) & watched


def near_silent(narrow: np.ndarray, expected: np.ndarray, silent: np.ndarray) -> np.ndarray:
    """People's narrow cells (``narrow``: a person on fewer than ``flags.NARROW_APIS`` APIs' worth)
    that are not silent but expect at most ``NEAR_SILENT`` failures: held down as onsets."""
    return (
        np.asarray(narrow, dtype=bool)
        & (np.asarray(expected) <= NEAR_SILENT)
        & ~np.asarray(silent, dtype=bool)
    )


def as_usual(scored: Scores, near: np.ndarray) -> Scores:
    """``near`` cells were scored as onsets; they had failures before, so their reasons must not
    say otherwise: ``scored`` with them no longer onsets, nor lifted ones (new arrays: the onsets
    ``score_counts`` returns may be the very array it was given)."""
    return replace(scored, onset=scored.onset & ~near, lifted=scored.lifted & ~near)
