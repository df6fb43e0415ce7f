"""SQS messages a forwarder started and has not finished, kept in its checkpoint folder.

Several forwarders may share one queue, and each de-duplicates only what it wrote itself. So a
file begun by one forwarder must be finished by the same one: if a stop (SIGTERM, the run's
deadline) or a kill cuts a file short, the message stays invisible to the others and its claim
keeps what the restart needs to take it back and go on where it stopped: the message's receipt
handle and body, the files already done and the record position in the current one.

A claim is saved when a message is started (without fsync: a kill -9 does not lose a written
file), updated at a stop, and dropped once the message is deleted. Claims older than SQS's
longest retention (14 days) are forgotten.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from iamspike.ingest.checkpoint import CheckpointStore

KEY = "claims"
MAX_AGE_SECONDS = 14 * 24 * 3600
MAX_CLAIMS = 1000

log = logging.getLogger(__name__)


class Claims:
    """message id -> {"receipt", "body", "done": [sources], "source", "position", "at"}.

    ``receipt`` is "" once the message is no longer held (released, or failed): it is then
    resumed only if SQS hands it to this forwarder again.
    """

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        loaded = store.load(KEY, {})
        self.items: dict[str, dict[str, Any]] = loaded if isinstance(loaded, dict) else {}
        now, unusable = time.time(), [] if isinstance(loaded, dict) else [f"a JSON {type(loaded).__name__}"]
        for message_id, claim in list(self.items.items()):
            if not _usable(claim):
                unusable.append(message_id)
                del self.items[message_id]
            elif now - float(claim.get("at") or 0) > MAX_AGE_SECONDS:
                del self.items[message_id]
        if unusable:
            log.warning(
                "checkpoint %s.json is unreadable in part (%s): those messages are read from their"
                " start if SQS hands them to this forwarder again",
                store.path(KEY),
                ", ".join(unusable[:5]) + (f" and {len(unusable) - 5} more" if len(unusable) > 5 else ""),
            )

    def held(self) -> list[tuple[str, dict[str, Any]]]:
        """Claims whose message this forwarder may still hold (a receipt handle is kept)."""
        return [(message_id, claim) for message_id, claim in self.items.items() if claim.get("receipt")]

    def get(self, message_id: str) -> dict[str, Any]:
        return self.items.get(message_id) or {}

    def start(self, message_id: str, receipt: str, body: str) -> None:
        claim = self.items.setdefault(message_id, {"done": [], "source": "", "position": 0})
        claim.update(receipt=receipt, body=body, at=time.time())
        while len(self.items) > MAX_CLAIMS:
            del self.items[next(iter(self.items))]
        self._save()

    def stopped(self, message_id: str, done: list[str], source: str, position: int, held: bool) -> None:
        """Where the message's files stand; ``held``: the message stays invisible for us."""
        claim = self.items.get(message_id)
        if claim is None:
            return
        claim.update(done=sorted(set(claim.get("done", [])) | set(done)), source=source, position=position)
        if not held:
            claim["receipt"] = ""
            if not claim["done"] and not position:
                del self.items[message_id]  # nothing of it was written: nothing to resume
        self._save()

    def finish(self, message_ids: list[str]) -> None:
        removed = [self.items.pop(message_id, None) for message_id in message_ids]
        if any(claim is not None for claim in removed):
            self._save()

    def _save(self) -> None:
        self.store.save(KEY, self.items, durable=False)


def _usable(claim: Any) -> bool:
    """Whether a saved claim has the fields and types this version writes (an older version's
    or a damaged file's is dropped: its message is read from its start if it comes back)."""
    if not isinstance(claim, dict):
        return False
    done = claim.get("done", [])
    return (
        isinstance(claim.get("at", 0), (int, float))
        and all(isinstance(claim.get(name, ""), str) for name in ("receipt", "body", "source"))
        and isinstance(done, list)
        and all(isinstance(source, str) for source in done)
        and type(claim.get("position", 0)) is int
        and claim.get("position", 0) >= 0
    )
