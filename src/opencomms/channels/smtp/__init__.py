"""The SMTP route: `[[routes]] type = "smtp"`, carrying the EMAIL channel."""

from opencomms.channels.registry import ChannelKind, register
from opencomms.channels.smtp.channel import SmtpChannel, smtp_channel
from opencomms.channels.smtp.config import DkimKey, SmtpRouteConfig
from opencomms.domain.channels import ChannelType

register(ChannelKind("smtp", frozenset({ChannelType.EMAIL}), SmtpRouteConfig, smtp_channel))

__all__ = ["DkimKey", "SmtpChannel", "SmtpRouteConfig", "smtp_channel"]
