"""The pinned HTTP client (chalicelib/outbound.py) against real receivers on loopback addresses: it
connects to the address that was checked, never to a second DNS answer, keeps the name for Host, SNI and
the certificate check, and follows no redirect."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.core.urls import AddressPolicy, IPAddress, parse_http_url
from chalicelib.outbound import PinnedHttpClient
from tests.peers.webhook_receiver import WebhookReceiver

Receivers = Callable[..., WebhookReceiver]


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    """Receivers on given loopback addresses (and ports), closed after the test."""
    started: list[WebhookReceiver] = []

    def start(host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> WebhookReceiver:
        started.append(WebhookReceiver(host, port, tls=tls).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


def only(*allowed: str) -> AddressPolicy:
    """A policy for which just these loopback addresses count as public (tests connect to nothing else)."""

    def resolver(host: str, port: int) -> list[str]:
        raise OSError("unused")

    return AddressPolicy(resolve=resolver, is_allowed=lambda ip: str(ip) in allowed)


def test_the_connection_goes_to_the_checked_address_not_to_a_later_dns_answer(receivers: Receivers) -> None:
    answers = iter([["127.0.0.2"], ["127.0.0.1"]])  # a rebinding DNS: harmless first, loopback after
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    def allowed(ip: IPAddress) -> bool:
        return str(ip) == "127.0.0.2"

    checked = receivers("127.0.0.2")
    decoy = receivers("127.0.0.1", checked.port)  # where a second resolution would lead
    client = PinnedHttpClient(AddressPolicy(resolve=rebinding, is_allowed=allowed))
    url = parse_http_url(f"http://rebind.example:{checked.port}/hook?x=1", "url")
    result = client.post(url, b"{}", {"X-Custom": "kept"}, timeout=5)
    assert result.status == 200, result
    assert calls == ["rebind.example"], "resolved exactly once"
    [(path, headers, body)] = checked.posts
    assert (path, headers["Host"], headers["X-Custom"], body) == ("/hook?x=1", f"rebind.example:{checked.port}", "kept", b"{}")
    assert decoy.posts == []
    again = client.post(url, b"{}", {}, timeout=5)  # the next delivery resolves again: now loopback
    assert again.status is None and "non-public address (127.0.0.1)" in (again.error or "")
    assert again.retryable and decoy.posts == [] and len(checked.posts) == 1


def test_a_private_answer_is_refused_before_any_connection(receivers: Receivers) -> None:
    receiver = receivers()
    policy = AddressPolicy(resolve=lambda host, p: ["127.0.0.1"])
    result = PinnedHttpClient(policy).post(parse_http_url(f"http://hooks.example:{receiver.port}/", "url"), b"", {}, 5)
    assert result.status is None and "non-public" in (result.error or "") and receiver.posts == []
    literal = PinnedHttpClient(policy).post(parse_http_url(f"http://127.0.0.1:{receiver.port}/", "url"), b"", {}, 5)
    assert not literal.retryable and receiver.posts == []


def test_ipv6_literals_are_dialled_as_given(receivers: Receivers) -> None:
    try:
        receiver = receivers("::1")
    except OSError:
        pytest.skip("::1 cannot be bound here")
    result = PinnedHttpClient(only("::1")).post(parse_http_url(f"http://[::1]:{receiver.port}/v6", "url"), b"x", {}, 5)
    assert result.status == 200 and receiver.posts[0].headers["Host"] == f"[::1]:{receiver.port}"


def test_redirects_are_not_followed(receivers: Receivers) -> None:
    receiver = receivers("127.0.0.2")
    receiver.plan = [(307, {"Location": "http://127.0.0.1:1/elsewhere"})]
    result = PinnedHttpClient(only("127.0.0.2")).post(parse_http_url(f"http://127.0.0.2:{receiver.port}/", "url"), b"", {}, 5)
    assert result.status == 307 and len(receiver.posts) == 1


def test_an_unresolvable_name_is_a_retryable_failure() -> None:
    def nothing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    result = PinnedHttpClient(AddressPolicy(resolve=nothing)).post(parse_http_url("https://gone.example/", "url"), b"", {}, 5)
    assert result.status is None and result.retryable and "does not resolve" in (result.error or "")


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    context: ssl.SSLContext


def pki(tmp_path: Path, name: str) -> Pki:
    """A CA and a server certificate for `name`, made here (nothing is fetched)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False).sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Pki(ca_file, context)


def test_tls_keeps_the_name_for_sni_and_the_certificate_check(tmp_path: Path, receivers: Receivers) -> None:
    keys = pki(tmp_path, "hooks.example")
    loopback = ipaddress.ip_address("127.0.0.1")
    policy = AddressPolicy(resolve=lambda host, port: ["127.0.0.1"], is_allowed=lambda ip: ip == loopback)
    receiver = receivers(tls=keys.context)
    client = PinnedHttpClient(policy, ca_certs=str(keys.ca_file))
    result = client.post(parse_http_url(f"https://hooks.example:{receiver.port}/tls", "url"), b"{}", {}, 5)
    assert result.status == 200, result
    assert receiver.sni == ["hooks.example"] and receiver.posts[0].headers["Host"] == f"hooks.example:{receiver.port}"
    wrong = client.post(parse_http_url(f"https://other.example:{receiver.port}/tls", "url"), b"{}", {}, 5)
    assert wrong.status is None and "doesn't match 'hooks.example'" in (wrong.error or "") and len(receiver.posts) == 1
