"""The SMTP route: `[[routes]] type = "smtp"`, carrying the EMAIL channel."""

from opencomms.channels.smtp.channel import SmtpChannel, smtp_channel
from opencomms.channels.smtp.config import DkimKey, SmtpRouteConfig

__all__ = ["DkimKey", "SmtpChannel", "SmtpRouteConfig", "smtp_channel"]
