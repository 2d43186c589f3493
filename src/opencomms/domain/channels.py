"""The channel vocabularies of the spec, in one place.

A *sender channel* (`ChannelType`) is what a message travels over: SMS, RCS, WhatsApp or
email. An *address channel* (`AddressChannel`) is the kind of address a recipient gives: a
phone number reaches SMS and RCS senders, a WhatsApp number WhatsApp senders, an email
address email senders.
"""

from enum import StrEnum


class ChannelType(StrEnum):
    SMS = "SMS"
    RCS = "RCS"
    WHATSAPP = "WHATSAPP"
    EMAIL = "EMAIL"


class AddressChannel(StrEnum):
    PHONE = "PHONE"
    WHATSAPP = "WHATSAPP"
    EMAIL = "EMAIL"


# Which recipient address channels each sender channel reaches.
REACHES: dict[ChannelType, frozenset[AddressChannel]] = {
    ChannelType.SMS: frozenset({AddressChannel.PHONE}),
    ChannelType.RCS: frozenset({AddressChannel.PHONE}),
    ChannelType.WHATSAPP: frozenset({AddressChannel.WHATSAPP}),
    ChannelType.EMAIL: frozenset({AddressChannel.EMAIL}),
}
