"""republish-processor: answers a newsroom's "republish" inbox."""

__version__ = "0.1.0"
