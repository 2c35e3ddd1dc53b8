"""A self-signed certificate for 127.0.0.1 made with openssl, and HTTPS requests trusting it
(the TLS tests of the host and of nginx's TLS termination)."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Certificate:
    certificate: Path  # PEM
    key: Path  # PEM, unencrypted

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate only (hostname checked: 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.certificate))


def self_signed_certificate(directory: Path) -> Certificate:
    """A fresh P-256 key and a one-day certificate for IP 127.0.0.1 and localhost in `directory`."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed (apt-get install openssl)"
    certificate, key = directory / "certificate.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )
    return Certificate(certificate, key)


def https_get(port: int, path: str, context: ssl.SSLContext, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET over TLS on a fresh connection: (status, body)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def https_healthz(port: int, context: ssl.SSLContext) -> tuple[int, dict[str, Any]]:
    status, body = https_get(port, "/healthz", context, timeout=3.0)
    return status, json.loads(body) if body else {}
