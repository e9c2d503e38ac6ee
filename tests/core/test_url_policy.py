"""The URL policy (chalicelib/core/urls.py): the SSRF regression suite.

Every form here was tried against the running service by a fuzzing pass. The ones marked NEW got through
before this policy (a backslash in the authority, shared address space, multicast, 6to4 and NAT64 forms
embedding a private IPv4, credentials in the URL); the rest were already refused and must stay so."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
import urllib3

from chalicelib.core.errors import InstanceManagerError
from chalicelib.core.urls import AddressPolicy, HttpUrl, Unresolvable, UrlRefused, is_public_address, parse_http_url

# Refused by parsing alone, whatever DNS says.
AMBIGUOUS_OR_MALFORMED = [
    # NEW: a backslash in the authority: urlsplit sees hooks.example.com, urllib3 connects to what is before it
    "http://127.0.0.1:5797\\@hooks.example.com/hook",
    "http://169.254.169.254\\@hooks.example.com/hook",
    "http://[::1]\\@hooks.example.com/hook",
    "http://10.0.0.1:8080\\@hooks.example.com/hook",
    "http://hooks.example.com\\@127.0.0.1/",
    "http://hooks.example.com\\.127.0.0.1/",
    "https://hooks.example.com/a\\b",
    # NEW: credentials in the URL (they would be stored and listed in clear)
    "https://user:pass@hooks.example.com/",
    "https://user@hooks.example.com/",
    "https://:pass@hooks.example.com/",
    # userinfo tricks
    "http://hooks.example.com@127.0.0.1/",
    "http://hooks.example.com:80@127.0.0.1/",
    "http://127.0.0.1#@hooks.example.com/",
    "http://hooks.example.com#.127.0.0.1/",
    "http://foo@evil@hooks.example.com/",
    "http://%40@127.0.0.1/",
    # decimal, octal, hex and short IPv4 forms
    "http://2130706433/",
    "http://017700000001/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",
    "http://0177.0000.0000.0001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0/",
    "http://0x0/",
    "http://00/",
    "http://010.0.0.1/",
    "http://3232235521/",  # 192.168.0.1
    "http://0xa9fea9fe/",  # 169.254.169.254
    "http://2852039166/",  # 169.254.169.254
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://1.2.3.4.5/",
    "http://256.0.0.1/",
    # zone ids and broken IPv6 literals
    "http://[fe80::1%25eth0]/",
    "http://[fe80::1%eth0]/",
    "http://[::1/",
    "http://[::1]]/",
    "http://[127.0.0.1]/",
    "http://[::ffff:127.0.0.1/",
    "http://[v1.fe80::a]/",
    # hosts that are no DNS names
    "http://hooks.example.com./",
    "http://hooks..example.com/",
    "http://-hooks.example.com/",
    "http://hooks_example.com/",
    "http://%31%32%37.0.0.1/",
    "http://127%2e0%2e0%2e1/",
    "http://local%68ost/",
    "http:///hooks.example.com/",
    "http://:80/",
    "http:/hooks.example.com/",
    "http:hooks.example.com/",
    "//hooks.example.com/",
    "hooks.example.com/hook",
    # whitespace, control and non-ASCII characters
    "http://hooks.example.com/\nHost: 127.0.0.1",
    "http://hooks.example.com/\r\n",
    "http://hooks.example.com\t/",
    "http://hooks.example.com /",
    " http://hooks.example.com/",
    "http://hooks.example.com/\x00",
    "http://hooks.example.com/\x7f",
    "http://hooks.ex\u0430mple.com/",  # a Cyrillic a
    "http://127\u30020\u30020\u30021/",  # ideographic full stops
    "http://\uff11\uff12\uff17.0.0.1/",  # fullwidth digits
    "http://hooks.example.com/caf\u00e9",
    # ports
    "http://hooks.example.com:0/",
    "http://hooks.example.com:65536/",
    "http://hooks.example.com:/",
    "http://hooks.example.com:80:80/",
    "http://hooks.example.com:+80/",
    "http://hooks.example.com:\u0668\u0660/",  # Arabic-Indic digits
    "http://hooks.example.com:0x50/",
    # fragments and characters a client would re-encode
    "https://hooks.example.com/hook#frag",
    "https://hooks.example.com/<script>",
    "https://hooks.example.com/a b",
    "https://hooks.example.com/%zz",
    "https://hooks.example.com/{x}",
    "https://hooks.example.com/a|b",
    # non-http schemes
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "dict://127.0.0.1:11211/stat",
    "ftp://hooks.example.com/",
    "ws://hooks.example.com/",
    "wss://hooks.example.com/",
    "ldap://127.0.0.1/",
    "data:text/plain,hello",
    "javascript:alert(1)",
    "jar:http://hooks.example.com!/",
    "netdoc:///etc/passwd",
    "https+unix://%2Frun%2Fdocker.sock/",
    "http+unix://%2Frun%2Fdocker.sock/",
    "",
    "http://",
    "https://",
    "https://" + "a" * 2050 + ".example.com/",
]

# Parse fine, and are then refused by the address policy.
NON_PUBLIC_ADDRESSES = [
    "http://127.0.0.1/", "http://127.0.0.1?@hooks.example.com/", "http://127.255.255.254/", "http://0.0.0.0/", "http://10.0.0.1:8080/",
    "http://172.16.0.1/", "http://172.31.255.255/", "http://192.168.0.1/", "http://169.254.169.254/",
    "http://169.254.170.2/", "http://192.0.0.1/", "http://192.0.2.1/", "http://198.18.0.1/",
    "http://198.51.100.1/", "http://203.0.113.1/", "http://240.0.0.1/", "http://255.255.255.255/",
    "http://100.64.0.1/",  # NEW: shared address space (carrier-grade NAT)
    "http://100.127.255.254/",  # NEW
    "http://224.0.0.1/", "http://239.255.255.250/",  # NEW: multicast
    "http://192.88.99.1/",  # NEW: 6to4 relay anycast
    "http://[::1]/", "http://[::]/", "http://[0:0:0:0:0:0:0:1]/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/", "http://[::ffff:169.254.169.254]/", "http://[::ffff:10.0.0.1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[fd00:ec2::254]/",
    "http://[ff02::1]/", "http://[ff0e::1]/",  # NEW: IPv6 multicast
    "http://[2002:7f00:1::]/", "http://[2002:a9fe:a9fe::1]/", "http://[2002:c0a8:1::1]/",  # NEW: 6to4 embedding
    "http://[64:ff9b::127.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b::10.0.0.1]/",  # NEW: NAT64
    "http://[64:ff9b:1::8.8.8.8]/",  # NEW: local-use NAT64
    "http://[::127.0.0.1]/", "http://[::7f00:1]/",  # IPv4-compatible
    "http://[2001::1]/",  # Teredo
    "http://[2001:db8::1]/", "http://[fec0::1]/", "http://[100::1]/",
]

ACCEPTED = {
    "https://hooks.example.com/hook": "https://hooks.example.com/hook",
    "HTTPS://Hooks.Example.COM/Hook": "https://hooks.example.com/Hook",
    "https://hooks.example.com": "https://hooks.example.com/",
    "https://hooks.example.com:443/x": "https://hooks.example.com/x",
    "http://hooks.example.com:80/x": "http://hooks.example.com/x",
    "https://hooks.example.com:8443/x?a=1&b=%20c": "https://hooks.example.com:8443/x?a=1&b=%20c",
    "https://hooks.example.com?x=1": "https://hooks.example.com/?x=1",
    "https://xn--caf-dma.example/p": "https://xn--caf-dma.example/p",
    "http://203.0.113.7:8080/h": "http://203.0.113.7:8080/h",
    "http://[2606:4700::1111]/h": "http://[2606:4700::1111]/h",
    "http://[2606:4700:0:0:0:0:0:1111]/h": "http://[2606:4700::1111]/h",
    "https://h.example/a/b;c=d/@x:y!$'()*+,~": "https://h.example/a/b;c=d/@x:y!$'()*+,~",
}

PUBLIC = ["8.8.8.8", "1.1.1.1", "203.0.114.1", "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8",
          "64:ff9b::8.8.8.8", "2002:808:808::1"]


@pytest.mark.parametrize("raw", AMBIGUOUS_OR_MALFORMED)
def test_ambiguous_or_malformed_urls_are_refused_with_a_message_naming_the_field(raw: str) -> None:
    with pytest.raises(InstanceManagerError) as refused:
        parse_http_url(raw, "api_webhook_schema.url")
    assert refused.value.code == "VALIDATION_ERROR" and refused.value.http_status == 400
    assert refused.value.message.startswith("api_webhook_schema.url: ")


@pytest.mark.parametrize("raw", NON_PUBLIC_ADDRESSES)
def test_non_public_addresses_are_refused_at_configuration_and_at_delivery(raw: str) -> None:
    url = parse_http_url(raw, "url")
    assert url.ip is not None and not is_public_address(url.ip)
    with pytest.raises(UrlRefused, match="non-public address"):
        AddressPolicy(resolve=_no_dns).resolve_checked(url)
    with pytest.raises(InstanceManagerError, match="non-public address"):
        AddressPolicy(resolve=_no_dns).check_configured(url, "url")
    assert AddressPolicy(allow_private=True, resolve=_no_dns).resolve_checked(url) == [url.ip]


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_routable_addresses_pass(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(("raw", "canonical"), ACCEPTED.items())
def test_accepted_urls_are_stored_canonical_and_every_parser_reads_them_alike(raw: str, canonical: str) -> None:
    url = parse_http_url(raw, "url")
    assert str(url) == canonical and parse_http_url(canonical, "url") == url  # canonical is a fixed point
    # The URL that is checked is the URL that is connected to: urllib3 (the HTTP client's parser) and the
    # standard library agree with ours on the canonical form, to the byte.
    theirs = urllib3.util.parse_url(canonical)
    split = urlsplit(canonical)
    host = f"[{url.host}]" if ":" in url.host else url.host
    assert (theirs.scheme, theirs.host, theirs.port or url.port) == (url.scheme, host, url.port)
    assert (split.hostname, split.port or url.port) == (url.host, url.port)
    assert (theirs.request_uri, split.username, split.password) == (url.target, None, None)
    assert theirs.url == canonical


def test_the_messages_say_what_to_send() -> None:
    cases = {
        "http://127.0.0.1:5797\\@hooks.example.com/hook": "backslash",
        "https://user:pass@hooks.example.com/": "send them as a header",
        "http://0x7f000001/": "four decimal numbers",
        "http://[fe80::1%25eth0]/": "zone id",
        "ftp://hooks.example.com/": "use http:// or https://",
        "http://hooks.example.com/\nx": "control character",
    }
    for raw, hint in cases.items():
        with pytest.raises(InstanceManagerError, match=hint):
            parse_http_url(raw, "url")


def test_a_name_is_resolved_once_and_every_address_is_checked() -> None:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["203.0.114.9", "10.0.0.1"]  # one public answer does not make a private one safe

    url = parse_http_url("https://hooks.example.com/h", "url")
    with pytest.raises(UrlRefused, match=r"non-public address \(10\.0\.0\.1\)"):
        AddressPolicy(resolve=resolve).resolve_checked(url)
    assert calls == ["hooks.example.com"]


def test_names_that_resolve_to_private_addresses_are_refused_but_unresolvable_ones_wait() -> None:
    url = parse_http_url("https://rebind.example/h", "url")
    with pytest.raises(InstanceManagerError, match=r"rebind\.example resolves to a non-public address"):
        AddressPolicy(resolve=lambda h, p: ["::ffff:169.254.169.254"]).check_configured(url, "url")
    AddressPolicy(resolve=_no_dns).check_configured(url, "url")  # may resolve by the time events flow
    with pytest.raises(Unresolvable):
        AddressPolicy(resolve=_no_dns).resolve_checked(url)


def test_localhost_is_refused_through_the_system_resolver() -> None:
    with pytest.raises(InstanceManagerError, match="localhost resolves to a non-public address"):
        AddressPolicy().check_configured(parse_http_url("http://localhost:5797/hook", "url"), "url")


def test_authority_keeps_the_name_for_host_and_tls() -> None:
    assert HttpUrl("https", "hooks.example.com", 443, "/").authority == "hooks.example.com"
    assert HttpUrl("http", "2606:4700::1111", 8080, "/").authority == "[2606:4700::1111]:8080"


def _no_dns(host: str, port: int) -> list[str]:
    raise OSError("no DNS in this test")
