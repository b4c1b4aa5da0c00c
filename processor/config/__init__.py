"""The configuration: `settings` says what it holds, `loading` reads and checks the TOML file."""

from processor.config.loading import config_path, is_loopback, load_config, parse_config
from processor.config.settings import (AUTH_MODES, CatalogConfig, CorrectionsConfig, DEFAULT_CONFIG_NAME, DEFAULT_WIRE_SOURCES, SECURITY_MODES, SINKS,
                                       SOURCES, Config, ConfigError, ImapConfig, OAuth2Config, PublicationConfig,
                                       Secret, ServerConfig, SmtpConfig, WebConfig, WorkerConfig)

__all__ = ["CatalogConfig", "CorrectionsConfig", "AUTH_MODES", "DEFAULT_CONFIG_NAME", "DEFAULT_WIRE_SOURCES", "SECURITY_MODES", "SINKS", "SOURCES", "Config",
           "ConfigError", "ImapConfig", "OAuth2Config", "PublicationConfig", "Secret", "ServerConfig", "SmtpConfig",
           "WebConfig", "WorkerConfig", "config_path", "is_loopback", "load_config", "parse_config"]
