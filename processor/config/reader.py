"""Typed access to a config file's tables, with errors that name the key; `is_loopback`."""

from __future__ import annotations

from collections.abc import Callable

import ipaddress
from pathlib import Path
from typing import Any

from processor.config.schema import KNOWN_KEYS
from processor.config.settings import ConfigError, Secret


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Reader:
    """Typed access to the TOML tables with error messages that name the key."""

    def __init__(self, data: dict[str, Any], base_dir: Path, environ: dict[str, str]) -> None:
        self.data = data
        self.base_dir = base_dir
        self.environ = environ

    def table(self, name: str, required: bool = True) -> dict[str, Any]:
        value = self.data.get(name)
        if value is None:
            if required:
                raise ConfigError(f"config table [{name}] is missing")
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"config key [{name}] must be a table")
        return value

    def get(self, table: str, key: str, kind: type, default: Any = ..., required_table: bool = True) -> Any:
        if key not in KNOWN_KEYS.get(table, ()):  # a loader change that schema.KNOWN_KEYS has not caught up with
            raise AssertionError(f"config key [{table}] {key} is read but not listed in schema.KNOWN_KEYS")
        values = self.table(table, required=required_table)
        if key not in values:
            if default is ...:
                raise ConfigError(f"config key [{table}] {key} is missing")
            return default
        value = values[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"config key [{table}] {key} must be {kind_name(kind)}, got {value!r}")
        return value

    def text(self, table: str, key: str, default: Any = ..., required_table: bool = True) -> str:
        value = self.get(table, key, str, default, required_table)
        if value is not None and any(ch in value for ch in "\r\n"):
            raise ConfigError(f"config key [{table}] {key} must not contain line breaks")
        return value

    def path(self, table: str, key: str) -> Path | None:
        value = self.get(table, key, str, None, required_table=False)
        if not value:
            return None
        return (self.base_dir / value).expanduser()

    def secret(self, table: str, prefix: str = "password",
               check: Callable[[str, str], None] | None = None) -> Secret | None:
        """The secret named by `{prefix}_env` (an environment variable) or `{prefix}_file`; None when neither is
        set. It is read when first used; `check(value, key)` may refuse it then with a ConfigError."""
        env_key, file_key = f"{prefix}_env", f"{prefix}_file"
        env_name = self.get(table, env_key, str, "")
        file_name = self.get(table, file_key, str, "")
        if env_name and file_name:
            raise ConfigError(f"config keys [{table}] {env_key} and {file_key}: set only one")
        environ = self.environ

        def from_environment() -> str:
            if env_name not in environ:
                raise ConfigError(f"config key [{table}] {env_key}: environment variable {env_name} is not set")
            return checked(environ[env_name], env_key)

        def from_file() -> str:
            secret_path = (self.base_dir / file_name).expanduser()
            try:
                value = secret_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"config key [{table}] {file_key}: cannot read {secret_path} ({exc.strerror})") from None
            return checked(value, file_key)

        def checked(value: str, key: str) -> str:
            if check is not None:
                check(value, f"[{table}] {key}")
            return value

        if env_name:
            return Secret(resolve=from_environment)
        if file_name:
            return Secret(resolve=from_file)
        return None


def kind_name(kind: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list"}.get(
        kind, kind.__name__
    )
