"""One storage/passwords entry read by its name, as the input's session key allows.

splunkd names an entry ``<realm>:<username>:`` (colons inside realm or username escaped as
``\\:``) and decrypts only the entry asked for: listing the collection would decrypt every
secret of the app's namespace to find one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

APP = "TA-aws-iam-error-spike"
_S = "{http://dev.splunk.com/ns/rest}"
_ATOM = "{http://www.w3.org/2005/Atom}"


class SecretNotFound(ValueError):
    """No storage/passwords entry of that realm and username (one line)."""


def entry_name(realm: str, username: str) -> str:
    """splunkd's name of the entry: ``realm:username:`` with inner colons escaped."""
    return f"{realm.replace(':', chr(92) + ':')}:{username.replace(':', chr(92) + ':')}:"


def service(server_uri: str, session_key: str) -> Any:
    """A splunklib ``Service`` on splunkd's management port, in the app's namespace."""
    from splunklib import client

    uri = urlsplit(server_uri)
    return client.Service(
        scheme=uri.scheme, host=uri.hostname, port=uri.port, token=session_key, owner="nobody", app=APP
    )


def clear_password(splunkd: Any, realm: str, username: str) -> str:
    """The clear password of entry ``realm:username:``; ``SecretNotFound`` if there is none."""
    from splunklib.binding import HTTPError

    name = entry_name(realm, username)
    try:
        response = splunkd.get("storage/passwords/" + name)  # splunklib percent-encodes it
    except HTTPError as exc:
        if exc.status == 404:
            raise SecretNotFound(f"no storage/passwords entry {realm}:{username}") from None
        raise ValueError(f"storage/passwords entry {realm}:{username}: HTTP {exc.status}") from None
    root = ET.fromstring(response.body.read())
    for entry in root.iter(_ATOM + "entry"):
        keys = {key.get("name"): key.text or "" for key in entry.iter(_S + "key")}
        if keys.get("realm") == realm and keys.get("username") == username:
            return keys.get("clear_password", "")
    raise SecretNotFound(f"no storage/passwords entry {realm}:{username}")


class Fetcher:
    """``fetch(realm, username)`` for ``iamspike.ingest.settings.with_secrets``: one entry's clear
    password through splunkd's REST API with the session key splunkd gave the input (connected
    on first use; ``ValueError`` in one line if the entry is missing or splunkd unreachable)."""

    def __init__(self, server_uri: str, session_key: str) -> None:
        self.server_uri = server_uri
        self.session_key = session_key
        self._service: Any = None

    def __call__(self, realm: str, username: str) -> str:
        try:
            if self._service is None:
                self._service = service(self.server_uri, self.session_key)
            return clear_password(self._service, realm, username)
        except OSError as exc:  # splunkd unreachable: refused, reset, timed out
            raise ValueError(
                f"cannot read storage/passwords entry {realm}:{username} from splunkd at"
                f" {self.server_uri}: {exc}"
            ) from None
