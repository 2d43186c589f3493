"""OpenComms: a self-hostable server for Twilio's Communications API v1."""

__version__ = "0.1.0"
