"""The YAML primitives every part of the schema is parsed with: ``_Parser`` checks one
value at a time and fails with a ``ConfigError`` naming the file, the key path and the
reason (``<file>: <key path>: <reason>``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from controller.config.schema import ConfigError

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

_T = TypeVar("_T")


def _key(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


class _Parser:
    def __init__(self, source: str, base_dir: str | Path | None = None) -> None:
        self.source = source
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.used_ports: dict[tuple[str, int], str] = {}

    # -- primitives ---------------------------------------------------------

    def fail(self, path: str, reason: str) -> ConfigError:
        where = f"{path}: " if path else ""
        return ConfigError(f"{self.source}: {where}{reason}")

    def mapping(
        self, value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"key {key!r} is not a string")
            if key not in required and key not in optional:
                allowed = ", ".join(sorted(required + optional))
                raise self.fail(_key(path, key), f"unknown key (allowed: {allowed})")
        for key in required:
            if key not in value:
                raise self.fail(_key(path, key), "missing required key")
        return value

    def named_mapping(self, value: Any, path: str, *, allow_empty: bool = True) -> dict[str, Any]:
        if value is None and allow_empty:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping of names, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str) or not _NAME_RE.match(key):
                raise self.fail(_key(path, key), f"{key!r} is not a valid name")
        if not value and not allow_empty:
            raise self.fail(path, "must not be empty")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected a non-empty string, got {_show(value)}")
        return value

    def integer(self, value: Any, path: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_show(value)}")
        if not lo <= value <= hi:
            raise self.fail(path, f"{value} is out of range {lo}..{hi}")
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(path, f"{_show(value)} is not one of {', '.join(choices)}")
        return str(value)

    def ipv4(self, value: Any, path: str) -> str:
        try:
            if not isinstance(value, str):
                raise ValueError
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise self.fail(path, f"{_show(value)} is not an IPv4 address") from None

    def interface(self, value: Any, path: str) -> ipaddress.IPv4Interface:
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError
            return ipaddress.IPv4Interface(value)
        except ValueError:
            raise self.fail(
                path, f"{_show(value)} is not an IPv4 interface (address/prefixlen)"
            ) from None

    def network(self, value: Any, path: str) -> str:
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError
            return str(ipaddress.IPv4Network(value, strict=True))
        except ValueError:
            raise self.fail(
                path, f"{_show(value)} is not an IPv4 network (CIDR, host bits zero)"
            ) from None

    def mac(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not _MAC_RE.match(value):
            hint = " (quote MACs in YAML)" if isinstance(value, int) else ""
            raise self.fail(path, f"{_show(value)} is not a MAC address{hint}")
        return value.lower()

    def endpoint(self, value: Any, path: str) -> tuple[str, int]:
        """``host:port`` (listen addresses)."""
        if not isinstance(value, str) or value.count(":") != 1:
            raise self.fail(path, f"{_show(value)} is not host:port")
        host, _, port = value.partition(":")
        if not host or not port.isdigit():
            raise self.fail(path, f"{_show(value)} is not host:port")
        return host, self.integer(int(port), path, 0, 65535)

    def list_of(self, value: Any, path: str, item: Callable[[Any, str], _T]) -> tuple[_T, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_type_name(value)}")
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

    def claim_port(self, switch: str, port: int, path: str, switches: Mapping[str, Any]) -> None:
        if switch not in switches:
            raise self.fail(path, f"switch {switch!r} is not defined in switches")
        owner = self.used_ports.get((switch, port))
        if owner is not None:
            raise self.fail(path, f"port {switch}:{port} is already used by {owner}")
        self.used_ports[(switch, port)] = path



def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _type_name(value)
    return repr(value)
