"""netscope: a full-screen, live netstat for Linux."""

__version__ = "0.1.0"
