"""Which hosts and ports the HTTP handler may reach."""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import httpx2

from onex_actors.core import ConfigError

__all__ = ["HostAllowlist"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen
class HostAllowlist:
    """Entries are ``host:port`` (``[::1]:8080`` for IPv6); hosts compare case-insensitively.

    Every entry names its port: a bare host would admit every port on it, the
    broker's and the database's included.
    """

    entries: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HostAllowlist:
        """Parse entries such as ``127.0.0.1:8080`` or ``api.internal:443``.

        Raises ``ConfigError`` for an entry without a port, or with a port out of range.
        """
        parsed: list[tuple[str, int]] = []
        for entry in entries:
            host, sep, port = entry.rpartition(":")
            if not sep or not port.isdigit() or not host or host.endswith(":"):
                raise ConfigError(
                    f"HTTP allowlist entry {entry!r} has no port: write host:port (for example "
                    f"{entry.strip('[]') or '127.0.0.1'}:8080, or [::1]:8080); a bare host "
                    "would admit every port on it"
                )
            if not 0 < int(port) < 65536:
                raise ConfigError(f"HTTP allowlist entry {entry!r}: port {port} is out of range")
            parsed.append((host.strip("[]").lower(), int(port)))
        return cls(tuple(parsed))

    def allows(self, url: httpx2.URL) -> bool:
        """Whether ``url``'s host and port are on the list."""
        host = url.host.lower()
        port = url.port or _DEFAULT_PORTS.get(url.scheme)
        return (host, port) in self.entries

    def __str__(self) -> str:
        return ", ".join(f"{h}:{p}" for h, p in self.entries) or "(empty)"
