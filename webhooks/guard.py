"""The SSRF guard: webhooks never call the portal's own network.

A URL is refused unless its scheme is http or https and every address its host resolves to is a
public one — not loopback, link-local (169.254/16, fe80::/10), private (10/8, 172.16/12, 192.168/16,
fc00::/7), unspecified, multicast or reserved — or lies inside `WEBHOOK_ALLOWED_NETWORKS`.
Checked when a subscription is saved (a 400 on `url`) and again when a delivery connects: the
connection goes to the address that was checked (`webhooks.transport`), so a DNS answer that
changes between the check and the connect (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL or address may not be called; the message says why, in words."""


@lru_cache(maxsize=8)
def _allowed(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip())


def allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _allowed(tuple(settings.WEBHOOK_ALLOWED_NETWORKS))


def address_refusal(address: IPAddress) -> str:
    """Why this address may not be called ("" if it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed_networks()):
        return ""
    for kind, test in (
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("an unspecified", address.is_unspecified),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved or not address.is_global),
    ):
        if test:
            return f"{address} is {kind} address; webhooks only call public addresses (WEBHOOK_ALLOWED_NETWORKS)."
    return ""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal: itself). Refused if it resolves to none."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"The host {host} could not be resolved ({exc}).") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused(f"The host {host} could not be resolved.")
    return addresses


def checked_addresses(host: str, port: int) -> list[IPAddress]:
    """The addresses to connect to for `host`, in the resolver's order, once every one is allowed
    (one refused address refuses the host: which one a client would use is not ours to pick)."""
    addresses = resolve(host, port)
    for address in addresses:
        if why := address_refusal(address):
            raise Refused(f"{host} resolves to {address}: {why}" if str(address) != host.strip("[]") else why)
    return addresses


def check_url(url: str) -> None:
    """Refuse (Refused) a URL a webhook may not call."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("A webhook URL starts with http:// or https://.")
    if not parts.hostname:
        raise Refused("A webhook URL names a host.")
    if parts.username or parts.password:
        raise Refused("A webhook URL carries no user name or password: verify deliveries by their signature.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("The port of this URL is not a number between 0 and 65535.") from None
    checked_addresses(parts.hostname, port)
