"""HTTPS as AWS serves it, through a proxy as an HTTPS client reaches it: ``CONNECT``.

- ``TlsRelay``: a loopback HTTPS endpoint (a self-signed certificate for 127.0.0.1, written to
  ``ca_file`` for ``AWS_CA_BUNDLE``) relaying every request to moto's plain-HTTP server.
- ``ConnectProxy``: a loopback forward proxy that accepts only ``CONNECT host:port`` with the
  expected ``Proxy-Authorization: Basic``, then pipes bytes both ways (it never sees inside the
  TLS). ``tunnels``: the ``host:port`` of each tunnel opened; ``rejected``: requests refused.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import select
import socket
import ssl
import urllib.parse

from standin.fixtures_aws import relay, serve

LOOPBACK = "127.0.0.1"


def self_signed(folder: str) -> tuple[str, str]:
    """(certificate, key) PEM files for CN/SAN 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(cert_file, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_file, key_file


class TlsRelay:
    def __init__(self, target: str, folder: str) -> None:
        self.target = urllib.parse.urlsplit(target)
        self.ca_file, key_file = self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self.server = serve(self.forward, context, connect=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, request) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        payload = relay(request, self.target.hostname, self.target.port, request.path, body)
        if request.command != "HEAD":
            request.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ConnectProxy:
    def __init__(self, user: str, password: str) -> None:
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.tunnels: list[str] = []
        self.rejected = 0
        self.server = serve(self.handle, connect=True)
        self.port = self.server.server_address[1]

    def handle(self, request) -> None:
        if request.command != "CONNECT" or request.headers.get("Proxy-Authorization") != self.expected:
            self.rejected += 1
            request.send_response(407 if request.command == "CONNECT" else 405)
            request.send_header("Proxy-Authenticate", 'Basic realm="standin"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        host, _, port = request.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self.tunnels.append(request.path)
        request.send_response(200, "Connection established")
        request.end_headers()
        request.wfile.flush()
        _pipe(request.connection, upstream)
        request.close_connection = True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [], 60)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()
