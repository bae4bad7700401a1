"""Mutual TLS: `serve --ssl-certfile/--ssl-keyfile/--ssl-ca-certs` answers only clients whose certificate the
given CA issued. A throw-away CA, server and client certificate are made with `cryptography`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import httpx
import pytest

from .conftest import start_server, stop_server

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _cert(subject, key, issuer, issuer_key, *, ca=False, server=False):
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, cert, key=None):
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    ca = _cert("test CA", ca_key, "test CA", ca_key, ca=True)
    _write(d / "ca", ca)
    _write(d / "server", _cert("127.0.0.1", server_key, "test CA", ca_key, server=True), server_key)
    _write(d / "client", _cert("scoring client", client_key, "test CA", ca_key), client_key)
    _write(d / "stranger", _cert("stranger", client_key, "other CA", other_key), client_key)
    return d


def test_mutual_tls_needs_a_client_certificate_of_the_ca(bundle_dir, pki):
    proc, plain = start_server(bundle_dir, "--ssl-certfile", str(pki / "server.crt"), "--ssl-keyfile",
                           str(pki / "server.key"), "--ssl-ca-certs", str(pki / "ca.crt"), https=True)
    url = plain.replace("http://", "https://")
    try:
        def client(name):
            ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            if name:
                ctx.load_cert_chain(str(pki / f"{name}.crt"), str(pki / f"{name}.key"))
            return httpx.Client(verify=ctx, timeout=30)

        with client("client") as c:
            assert c.get(f"{url}/health").json()["status"] == "ok"
        for name in (None, "stranger"):
            with client(name) as c, pytest.raises(httpx.HTTPError):
                c.get(f"{url}/health")
    finally:
        stop_server(proc)
