"""Which hosts and ports the HTTP handler may reach."""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import httpx

__all__ = ["HostAllowlist"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen
class HostAllowlist:
    """Entries are ``host`` (any port) or ``host:port``; hosts compare case-insensitively."""

    entries: tuple[tuple[str, int | None], ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HostAllowlist:
        """Parse entries such as ``127.0.0.1``, ``localhost:8080`` or ``[::1]:8080``."""
        parsed: list[tuple[str, int | None]] = []
        for entry in entries:
            host, sep, port = entry.rpartition(":")
            if sep and port.isdigit() and not host.endswith(":"):
                parsed.append((host.strip("[]").lower(), int(port)))
            else:
                parsed.append((entry.strip("[]").lower(), None))
        return cls(tuple(parsed))

    def allows(self, url: httpx.URL) -> bool:
        """Whether ``url``'s host and port are on the list."""
        host = url.host.lower()
        port = url.port or _DEFAULT_PORTS.get(url.scheme)
        return any(h == host and (p is None or p == port) for h, p in self.entries)

    def __str__(self) -> str:
        return ", ".join(h if p is None else f"{h}:{p}" for h, p in self.entries) or "(empty)"
