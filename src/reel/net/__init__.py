"""Outbound HTTP to addresses a user or an upstream named, behind one SSRF guard.

Image inputs, webhook deliveries and upstream results all go through :mod:`reel.net.fetch`;
nothing else in Reel connects to a URL it was given.
"""

from reel.net.addresses import Resolver, check_url, is_public_address, system_resolver
from reel.net.errors import FetchError
from reel.net.fetch import FetchPolicy, PostResult, fetch_bytes, fetch_to_file, post_bytes

__all__ = [
    "FetchError",
    "FetchPolicy",
    "PostResult",
    "Resolver",
    "check_url",
    "fetch_bytes",
    "fetch_to_file",
    "is_public_address",
    "post_bytes",
    "system_resolver",
]
