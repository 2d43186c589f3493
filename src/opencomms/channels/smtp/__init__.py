"""The SMTP route: `[[routes]] type = "smtp"`, carrying the EMAIL channel."""

from typing import TYPE_CHECKING

from opencomms import lazy

if TYPE_CHECKING:
    from opencomms.channels.smtp.channel import SmtpChannel, smtp_channel
    from opencomms.channels.smtp.config import DkimKey, SmtpRouteConfig

__all__ = ["DkimKey", "SmtpChannel", "SmtpRouteConfig", "smtp_channel"]

# Loaded on first use: every process reads the config model, only workers the channel
# (with DKIM and DNS).
_HOMES = {
    "SmtpChannel": "channel",
    "smtp_channel": "channel",
    "DkimKey": "config",
    "SmtpRouteConfig": "config",
}
__getattr__ = lazy.exports(__name__, _HOMES)
