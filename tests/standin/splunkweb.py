"""Splunk Web and splunkd's REST API as far as the Configuration page and the inputs use them.

One loopback HTTP server, on an installed app (``standin.install.SplunkHome``):

- Splunk Web: ``/en-US/account/login`` (a form; sets the session cookie ``splunkd_<port>`` and
  the CSRF cookie ``splunkweb_csrf_token_<port>``), ``/en-US/app/<app>/<view>`` (the view's
  ``template`` rendered with Mako as Splunk Web does, ``make_url`` included), ``/en-US/config``
  (``window.$C`` with ``FORM_KEY``), ``/en-US/static/app/<app>/...`` (``appserver/static``).
- Splunk Web's proxy to splunkd, ``/en-US/splunkd/__raw/servicesNS/<owner>/<app>/...``: 401
  without the session cookie; 401 "CSRF validation failed" on a request that changes something
  without ``X-Splunk-Form-Key`` equal to the CSRF cookie.
- splunkd itself, ``/servicesNS/...`` with ``Authorization: Splunk <session key>`` (what a
  modular input gets), answering Atom XML (its default) or JSON (``output_mode=json``).

Endpoints, as splunkd answers them: ``configs/conf-<file>[/<stanza>]``, ``storage/passwords``
(``realm:username:`` names, 409 on a duplicate, the password kept encrypted in
``local/passwords.conf`` under a key of this instance, ``clear_password`` in a GET as splunkd
gives it to anyone with list_storage_passwords), ``data/inputs/<kind>[/<name>[/enable|disable]]``
(the input's ``--validate-arguments`` run on create and edit, in the stand-in's ``env`` and with
its own address as splunkd's, so a check reads the stanza's secrets by name; its message as a 400; 409 on a
duplicate name; arguments outside the scheme refused), ``saved/searches[/<name>]``. Everything
is written to the app's ``local/`` as splunkd writes it, so an input reads what the page saved.
Every answer to the browser is kept in ``responses`` for the tests' secret checks; every write
(POST, DELETE) in ``writes``, and ``refuse_write`` makes a chosen one fail as splunkd would.

Nothing here imports product code: validation runs the installed entry script (a bare Python).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from standin import modinput
from standin.conf import parse_conf
from standin.install import SplunkHome

APP = "TA-aws-iam-error-spike"
LOCALE = "en-US"
USER, PASSWORD = "admin", "changeme-standin"
INPUT_KINDS = ("aws_cloudtrail_sqs", "aws_cloudtrail_s3", "aws_cloudtrail_lookup", "aws_ec2_inventory")
# Keys splunkd accepts for any input besides the scheme's arguments.
INPUT_COMMON_KEYS = {"interval", "index", "host", "sourcetype", "source", "disabled", "python.version"}


class RestError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass
class Response:
    method: str
    path: str
    status: int
    body: str


# -- conf files of the app, layered and written as splunkd does ---------------------------------
class AppConfs:
    def __init__(self, app_dir: str) -> None:
        self.app_dir = app_dir
        self.lock = threading.RLock()

    def _path(self, layer: str, name: str) -> str:
        return os.path.join(self.app_dir, layer, name + ".conf")

    def _read(self, layer: str, name: str) -> dict[str, dict[str, str]]:
        path = self._path(layer, name)
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as handle:
            stanzas = parse_conf(handle.read(), path)
        if not stanzas.get("default"):
            stanzas.pop("default", None)
        return stanzas

    def merged(self, name: str) -> dict[str, dict[str, str]]:
        """default/ under local/, the [default] stanza under every other."""
        with self.lock:
            merged = self._read("default", name)
            for stanza, keys in self._read("local", name).items():
                merged.setdefault(stanza, {}).update(keys)
        base = merged.pop("default", {})
        return {stanza: {**base, **keys} for stanza, keys in merged.items()}

    def exists(self, name: str, stanza: str) -> bool:
        return stanza in self.merged(name)

    def write(self, name: str, stanza: str, keys: dict[str, str]) -> None:
        """Set ``keys`` of ``stanza`` in ``local/<name>.conf`` (the file rewritten whole)."""
        with self.lock:
            local = self._read("local", name)
            local.setdefault(stanza, {}).update(keys)
            self._write(name, local)

    def delete(self, name: str, stanza: str) -> None:
        with self.lock:
            local = self._read("local", name)
            local.pop(stanza, None)
            self._write(name, local)

    def _write(self, name: str, stanzas: dict[str, dict[str, str]]) -> None:
        os.makedirs(os.path.join(self.app_dir, "local"), exist_ok=True)
        lines = []
        for stanza, keys in stanzas.items():
            lines.append(f"[{stanza}]")
            lines.extend(f"{k} = {v}" for k, v in keys.items())
            lines.append("")
        tmp = self._path("local", name) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines))
        os.replace(tmp, self._path("local", name))


# -- storage/passwords: encrypted under this instance's key --------------------------------------
class PasswordStore:
    """``local/passwords.conf`` stanzas ``[credential:<realm>:<username>:]`` with ``password =
    $7$<base64(nonce + ciphertext)>``: a keystream from HMAC-SHA256 of the instance key
    (``etc/auth/splunk.secret``), as splunkd keeps them encrypted with its splunk.secret."""

    def __init__(self, confs: AppConfs, home: str) -> None:
        self.confs = confs
        path = os.path.join(home, "etc", "auth", "splunk.secret")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(48))
        with open(path, "rb") as handle:
            self.key = handle.read().strip()

    def _stream(self, nonce: bytes, size: int) -> bytes:
        out = b""
        counter = 0
        while len(out) < size:
            out += hmac.new(self.key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
        return out[:size]

    def encrypt(self, text: str) -> str:
        data = text.encode("utf-8")
        nonce = secrets.token_bytes(16)
        cipher = bytes(a ^ b for a, b in zip(data, self._stream(nonce, len(data))))
        return "$7$" + base64.b64encode(nonce + cipher).decode("ascii")

    def decrypt(self, value: str) -> str:
        raw = base64.b64decode(value[3:])
        nonce, cipher = raw[:16], raw[16:]
        return bytes(a ^ b for a, b in zip(cipher, self._stream(nonce, len(cipher)))).decode("utf-8")

    @staticmethod
    def name(realm: str, username: str) -> str:
        return f"{realm.replace(':', chr(92) + ':')}:{username.replace(':', chr(92) + ':')}:"

    @staticmethod
    def split(name: str) -> tuple[str, str]:
        """``realm:username:`` (colons inside escaped) -> (realm, username)."""
        parts, current, i = [], "", 0
        while i < len(name):
            if name[i] == "\\" and i + 1 < len(name) and name[i + 1] == ":":
                current += ":"
                i += 2
                continue
            if name[i] == ":":
                parts.append(current)
                current = ""
            else:
                current += name[i]
            i += 1
        if len(parts) != 2 or current:
            raise RestError(404, f"Could not find object id={name}")
        return parts[0], parts[1]

    def entries(self) -> dict[str, dict[str, str]]:
        out = {}
        for stanza, keys in self.confs.merged("passwords").items():
            if stanza.startswith("credential:"):
                name = stanza[len("credential:") :]
                realm, username = self.split(name)
                out[name] = {"realm": realm, "username": username, "encr_password": keys.get("password", "")}
        return out

    def content(self, name: str) -> dict[str, object]:
        entry = self.entries()[name]
        return {
            "clear_password": self.decrypt(entry["encr_password"]),
            "encr_password": entry["encr_password"],
            "password": "********",
            "realm": entry["realm"],
            "username": entry["username"],
        }

    def put(self, name: str, password: str) -> None:
        self.confs.write("passwords", "credential:" + name, {"password": self.encrypt(password)})


# -- the server ------------------------------------------------------------------------------------
class SplunkWeb:
    """The stand-in; ``url`` is Splunk Web's base, ``mgmt_uri`` splunkd's (same port here)."""

    def __init__(self, home: SplunkHome, python: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.python = python
        self.env = env
        self.confs = AppConfs(home.app_dir)
        self.passwords = PasswordStore(self.confs, home.home)
        self.session = secrets.token_hex(16)
        self.csrf = secrets.token_hex(16)
        self.responses: list[Response] = []
        self.validations: list[tuple[str, dict[str, str]]] = []
        self._schemes: dict[str, set[str]] = {}
        self.mgmt_requests: list[str] = []  # "METHOD path" of each call with a session key (inputs)
        self.writes: list[str] = []  # "METHOD endpoint" of each POST or DELETE, refused ones too
        self._refusals: dict[int, tuple[int, str]] = {}  # index in ``writes`` -> status, message
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                standin.handle(self)

            do_GET = do_POST = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.mgmt_uri = self.url
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def refuse_write(self, nth: int, status: int = 500, text: str = "Internal Server Error") -> None:
        """Answer the ``nth`` write (POST or DELETE, counted from 1 from this call on) with
        ``status`` and splunkd's message ``text``, changing nothing; the others as usual."""
        self._refusals[len(self.writes) + nth - 1] = (status, text)

    # -- plumbing
    def _send(self, req, status: int, body: str, ctype: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        if (req.headers.get("Connection") or "").lower() == "close":  # splunklib asks for it
            req.send_header("Connection", "close")
            req.close_connection = True
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)

    def _cookies(self, req) -> dict[str, str]:
        jar = SimpleCookie(req.headers.get("Cookie") or "")
        return {k: v.value for k, v in jar.items()}

    def handle(self, req) -> None:
        parts = urlsplit(req.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(req.headers.get("Content-Length") or 0)
        form = (
            dict(parse_qsl(req.rfile.read(length).decode("utf-8"), keep_blank_values=True)) if length else {}
        )
        web = f"/{LOCALE}"
        try:
            if path.startswith(web + "/splunkd/__raw/"):
                self._proxy(req, path[len(web + "/splunkd/__raw") :], query, form)
            elif path.startswith("/services"):
                self.mgmt_requests.append(f"{req.command} {path}")
                if req.headers.get("Authorization") != f"Splunk {modinput.SESSION_KEY}":
                    self._send(req, 401, _messages("call not properly authenticated"), "application/json")
                    return
                self._rest(req, path, query, form, browser=False)
            elif path == web + "/account/login":
                self._login(req, query, form)
            elif path == web + "/config":
                js = f"window.$C = {json.dumps({'FORM_KEY': self.csrf, 'LOCALE': LOCALE, 'APP': APP})};"
                self._send(req, 200, js, "application/javascript")
            elif path.startswith(web + "/static/app/"):
                self._static(req, path[len(web + "/static/app/") :])
            elif path.startswith(web + "/app/"):
                self._view(req, path[len(web + "/app/") :])
            else:
                self._send(req, 404, "not found", "text/plain")
        except RestError as exc:
            self._send(req, exc.status, _messages(exc.text), "application/json")

    def _login(self, req, query: dict[str, str], form: dict[str, str]) -> None:
        target = query.get("return_to") or f"/{LOCALE}/app/{APP}/configuration"
        if req.command == "POST" and form.get("username") == USER and form.get("password") == PASSWORD:
            req.send_response(303)
            req.send_header("Location", form.get("return_to") or target)
            req.send_header("Set-Cookie", f"splunkd_{self.port}={self.session}; Path=/; HttpOnly")
            req.send_header("Set-Cookie", f"splunkweb_csrf_token_{self.port}={self.csrf}; Path=/")
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        page = (
            "<!doctype html><html><body><form method='post' id='login'>"
            "<input name='username' id='username'><input name='password' id='password' type='password'>"
            f"<input type='hidden' name='return_to' value='{escape(target)}'>"
            "<button type='submit' id='signin'>Sign in</button></form></body></html>"
        )
        self._send(req, 200 if req.command == "GET" else 401, page, "text/html")

    def _signed_in(self, req) -> bool:
        return self._cookies(req).get(f"splunkd_{self.port}") == self.session

    def _view(self, req, rest: str) -> None:
        app, _, view = rest.partition("/")
        if not self._signed_in(req):
            req.send_response(303)
            req.send_header("Location", f"/{LOCALE}/account/login?return_to={quote(req.path)}")
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        xml_path = os.path.join(self.home.app_dir, "default", "data", "ui", "views", view + ".xml")
        if app != APP or not os.path.exists(xml_path):
            self._send(req, 404, "no such view", "text/plain")
            return
        template = ET.parse(xml_path).getroot().get("template") or ""
        owner, _, rel = template.partition(":")
        from mako.template import Template

        path = os.path.join(self.home.home, "etc", "apps", owner, "appserver", rel.lstrip("/"))
        html = Template(filename=path).render(make_url=lambda url: f"/{LOCALE}{url}", _=lambda text: text)
        self._send(req, 200, html, "text/html; charset=utf-8")

    def _static(self, req, rest: str) -> None:
        app, _, rel = rest.partition("/")
        root = os.path.realpath(os.path.join(self.home.home, "etc", "apps", app, "appserver", "static"))
        path = os.path.realpath(os.path.join(root, unquote(rel)))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            self._send(req, 404, "not found", "text/plain")
            return
        with open(path, encoding="utf-8") as handle:
            ctype = "application/javascript" if path.endswith(".js") else "text/plain"
            self._send(req, 200, handle.read(), ctype)

    def _proxy(self, req, path: str, query: dict[str, str], form: dict[str, str]) -> None:
        if not self._signed_in(req):
            body = _messages("call not properly authenticated")
        elif req.command != "GET" and req.headers.get("X-Splunk-Form-Key") != self._cookies(req).get(
            f"splunkweb_csrf_token_{self.port}"
        ):
            body = _messages("Splunk cannot authenticate the request. CSRF validation failed.")
        else:
            self._rest(req, path, query, form, browser=True)
            return
        self.responses.append(Response(req.command, path, 401, body))
        self._send(req, 401, body, "application/json")

    # -- splunkd's REST API
    def _rest(self, req, path: str, query: dict[str, str], form: dict[str, str], browser: bool) -> None:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[:1] == ["servicesNS"] and len(segments) >= 3:
            endpoint = segments[3:]
        elif segments[:1] == ["services"]:
            endpoint = segments[1:]
        else:
            raise RestError(404, f"Unknown path {path}")
        try:
            if req.command in ("POST", "DELETE"):
                self.writes.append(f"{req.command} {'/'.join(endpoint)}")
                refusal = self._refusals.pop(len(self.writes) - 1, None)
                if refusal:
                    raise RestError(*refusal)
            status, entries = self._endpoint(req.command, endpoint, form)
        except RestError as exc:
            status, body = exc.status, _messages(exc.text)
        else:
            base = "/" + "/".join(quote(s, safe="") for s in segments[:3] + endpoint[:2])
            if query.get("output_mode") == "json":
                body = _json_feed(self.mgmt_uri, base, entries)
            else:
                body = _atom_feed(self.mgmt_uri, base, entries)
        ctype = "application/json" if query.get("output_mode") == "json" else "text/xml; charset=utf-8"
        if browser:
            self.responses.append(Response(req.command, path, status, body))
        self._send(req, status, body, ctype)

    def _endpoint(self, method: str, ep: list[str], form: dict[str, str]):
        if ep[0].startswith("configs") and len(ep) >= 2 and ep[1].startswith("conf-"):
            return self._conf(method, ep[1][len("conf-") :], ep[2:], form)
        if ep[:2] == ["storage", "passwords"]:
            return self._passwords(method, ep[2:], form)
        if ep[:2] == ["data", "inputs"] and len(ep) >= 3 and ep[2] in INPUT_KINDS:
            return self._inputs(method, ep[2], ep[3:], form)
        if ep[:2] == ["saved", "searches"]:
            status, entries = self._conf(method, "savedsearches", ep[2:], form, create=False)
            for _, content in entries:  # splunkd's names for enableSched and counttype
                content["is_scheduled"] = str(content.get("enableSched", "0")).lower() in ("1", "true")
                content["alert_type"] = content.get("counttype", "always")
            return status, entries
        raise RestError(404, f"Not Found: {'/'.join(ep)}")

    def _conf(self, method: str, conf: str, rest: list[str], form: dict[str, str], create: bool = True):
        stanzas = self.confs.merged(conf)
        if not rest:
            if method == "GET":
                return 200, [(name, _content(keys)) for name, keys in stanzas.items()]
            if method == "POST" and create:
                name = form.pop("name", "").strip()
                if not name:
                    raise RestError(400, "Missing required argument: name")
                if name in stanzas:
                    raise RestError(409, f"An object with name={name} already exists")
                self.confs.write(conf, name, form)
                return 201, [(name, _content(self.confs.merged(conf)[name]))]
            raise RestError(405, "Method not allowed")
        name = rest[0]
        if name not in stanzas:
            raise RestError(404, f"Could not find object id={name}")
        if method == "GET":
            return 200, [(name, _content(stanzas[name]))]
        if method == "POST":
            form.pop("name", None)
            self.confs.write(conf, name, _normalise_disabled(form))
            return 200, [(name, _content(self.confs.merged(conf)[name]))]
        if method == "DELETE":
            self.confs.delete(conf, name)
            return 200, []
        raise RestError(405, "Method not allowed")

    def _passwords(self, method: str, rest: list[str], form: dict[str, str]):
        entries = self.passwords.entries()
        if not rest:
            if method == "GET":
                return 200, [(name, self.passwords.content(name)) for name in entries]
            if method == "POST":
                username, realm, password = form.get("name", ""), form.get("realm", ""), form.get("password")
                if not username or password is None:
                    raise RestError(
                        400, "Missing required argument: " + ("name" if not username else "password")
                    )
                name = self.passwords.name(realm, username)
                if name in entries:
                    raise RestError(409, f"An object with name={name} already exists")
                self.passwords.put(name, password)
                return 201, [(name, self.passwords.content(name))]
            raise RestError(405, "Method not allowed")
        name = rest[0]
        if name not in entries:
            raise RestError(404, f"Could not find object id={name}")
        if method == "GET":
            return 200, [(name, self.passwords.content(name))]
        if method == "POST":
            if "password" not in form:
                raise RestError(400, "Missing required argument: password")
            self.passwords.put(name, form["password"])
            return 200, [(name, self.passwords.content(name))]
        if method == "DELETE":
            self.confs.delete("passwords", "credential:" + name)
            return 200, []
        raise RestError(405, "Method not allowed")

    def _scheme_args(self, kind: str) -> set[str]:
        """The scheme's arguments (``--scheme`` run once per kind, as splunkd caches it)."""
        if kind not in self._schemes:
            self._schemes[kind] = set(modinput.scheme(self.python, self.home, kind + ".py").args)
        return self._schemes[kind]

    def _inputs(self, method: str, kind: str, rest: list[str], form: dict[str, str]):
        stanzas = {
            name.split("://", 1)[1]: keys
            for name, keys in self.confs.merged("inputs").items()
            if name.startswith(kind + "://")
        }
        defaults = self.confs.merged("inputs").get(kind, {})
        if not rest:
            if method == "GET":
                return 200, [(name, _content({**defaults, **keys})) for name, keys in stanzas.items()]
            if method != "POST":
                raise RestError(405, "Method not allowed")
            name = form.pop("name", "").strip()
            if not name:
                raise RestError(400, "Missing required argument: name")
            if name in stanzas:
                raise RestError(409, f"An object with name={name} already exists")
            self._validate(kind, name, form)
            self.confs.write("inputs", f"{kind}://{name}", form)
            return 201, [(name, _content({**defaults, **form}))]
        name = rest[0]
        if name not in stanzas:
            raise RestError(404, f"Could not find object id={name}")
        stanza = f"{kind}://{name}"
        if len(rest) == 2 and method == "POST" and rest[1] in ("enable", "disable"):
            self.confs.write("inputs", stanza, {"disabled": "1" if rest[1] == "disable" else "0"})
        elif len(rest) == 1 and method == "GET":
            pass
        elif len(rest) == 1 and method == "POST":
            merged = {k: v for k, v in {**stanzas[name], **form}.items() if v != ""}
            self._validate(kind, name, {k: v for k, v in merged.items() if k != "disabled"})
            cleared = {k: "" for k, v in form.items() if v == "" and k in stanzas[name]}
            self.confs.write("inputs", stanza, {**{k: v for k, v in form.items() if v != ""}, **cleared})
        elif len(rest) == 1 and method == "DELETE":
            self.confs.delete("inputs", stanza)
            return 200, []
        else:
            raise RestError(405, "Method not allowed")
        keys = self.confs.merged("inputs")[stanza]
        return 200, [(name, _content({**defaults, **keys}))]

    def _validate(self, kind: str, name: str, params: dict[str, str]) -> None:
        allowed = self._scheme_args(kind) | INPUT_COMMON_KEYS
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise RestError(400, f'Argument "{unknown[0]}" is not supported by this handler.')
        self.validations.append((name, dict(params)))
        given = {k: v for k, v in params.items() if v != ""}
        ok, message = modinput.validate(
            self.python, self.home, kind + ".py", given, name=name, env=self.env, server_uri=self.mgmt_uri
        )
        if not ok:
            raise RestError(400, message)


def _normalise_disabled(form: dict[str, str]) -> dict[str, str]:
    if "disabled" in form:
        form["disabled"] = "1" if form["disabled"].lower() in ("1", "true", "t", "yes") else "0"
    return form


def _content(keys: dict[str, str]) -> dict[str, object]:
    content: dict[str, object] = dict(keys)
    content["disabled"] = str(keys.get("disabled", "0")).lower() in ("1", "true", "t", "yes")
    content["eai:acl"] = {"app": APP, "owner": "nobody", "sharing": "app"}
    content["eai:appName"] = APP
    content["eai:userName"] = "nobody"
    return content


def _messages(text: str) -> str:
    return json.dumps({"messages": [{"type": "ERROR", "text": text}]})


def _json_feed(origin: str, base: str, entries) -> str:
    return json.dumps(
        {
            "links": {"create": base + "/_new"},
            "origin": origin + base,
            "generator": {"build": "standin", "version": "9.4.0"},
            "entry": [
                {
                    "name": name,
                    "id": f"{origin}{base}/{quote(name, safe='')}",
                    "links": {"alternate": f"{base}/{quote(name, safe='')}"},
                    "author": "nobody",
                    "acl": content.get("eai:acl"),
                    "content": content,
                }
                for name, content in entries
            ],
            "paging": {"total": len(entries), "perPage": 30, "offset": 0},
            "messages": [],
        }
    )


def _atom_feed(origin: str, base: str, entries) -> str:
    def keys(content: dict[str, object]) -> str:
        return "".join(
            f'<s:key name="{escape(str(k))}">{escape(str(v))}</s:key>'
            for k, v in content.items()
            if not isinstance(v, dict)
        )

    items = "".join(
        f"<entry><title>{escape(name)}</title><id>{origin}{base}/{quote(name, safe='')}</id>"
        f'<link href="{base}/{quote(name, safe="")}" rel="alternate"/>'
        f'<content type="text/xml"><s:dict>{keys(content)}</s:dict></content></entry>'
        for name, content in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
        f"<opensearch:totalResults>{len(entries)}</opensearch:totalResults>{items}</feed>"
    )
