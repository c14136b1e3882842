"""The bridge's settings: the library's (``CITYPIPE_STACK__…``, ``CITYPIPE_BACKEND__…``,
``CITYPIPE_KEYS__…``: the stack it writes to) and the broker's, ``CITYPIPE_MQTT__…``,
validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

from citypipe.service.bridge import Limits
from citypipe.settings import Settings

CLIENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PORTS = {"mqtt": 1883, "mqtts": 8883}


class MqttSettings(BaseModel):
    broker: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="mqtt://host[:1883] or mqtts://host[:8883] (TLS)",
    )
    client_id: str = Field(
        default="citypipe-bridge",
        pattern=CLIENT_ID,
        description="stable: the broker keeps this client's session (and its messages) by it",
    )
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = Field(
        default=None, description="TLS: the CA of the broker's certificate (else the system's)"
    )
    cert_file: Path | None = Field(default=None, description="TLS: this client's certificate")
    key_file: Path | None = Field(default=None, description="TLS: its private key")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(
        default=7 * 86_400,
        ge=0,
        le=2**32 - 1,
        description="MQTT 5: how long the broker keeps the session (and queues messages) "
        "while the bridge is away; 3.1.1 sessions last as the broker says",
    )
    batch_messages: int = Field(default=Limits.messages, ge=1, le=65_535)
    batch_bytes: int = Field(default=Limits.bytes, ge=1024)
    batch_age_s: float = Field(default=Limits.age_s, gt=0, le=3600)
    receive_maximum: int | None = Field(
        default=None,
        ge=1,
        le=65_535,
        description="MQTT 5: unacknowledged messages the broker may send (the bridge's "
        "memory bound); default twice batch_messages, at most 65,535",
    )
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=60, ge=1)
    journal_retention_s: int = Field(default=3600, ge=60, le=86_400)
    arrival: Literal["clock", "property"] = Field(
        default="clock",
        description="clock: a message is dated by its arrival here; property: by its "
        "citypipe-received-at user property (replays of recorded messages only)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        url = urlsplit(self.broker)
        if url.scheme not in PORTS or not url.hostname:
            raise ValueError(
                f"broker: mqtt://host[:port] or mqtts://host[:port], not {self.broker!r}"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (a client certificate)")
        if (self.ca_file or self.cert_file) and url.scheme != "mqtts":
            raise ValueError("certificates are for TLS: use an mqtts:// broker URL")
        if self.receive_maximum is not None and self.receive_maximum < self.batch_messages:
            raise ValueError("receive_maximum below batch_messages: a batch could never fill")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s below reconnect_min_s")
        if self.arrival == "property" and self.protocol != "5":
            raise ValueError("arrival=property needs MQTT 5 (user properties)")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.broker).hostname or ""

    @property
    def port(self) -> int:
        url = urlsplit(self.broker)
        return url.port or PORTS[url.scheme]

    @property
    def tls(self) -> bool:
        return urlsplit(self.broker).scheme == "mqtts"

    @property
    def receive_max(self) -> int:
        return self.receive_maximum or min(65_535, 2 * self.batch_messages)

    @property
    def limits(self) -> Limits:
        return Limits(self.batch_messages, self.batch_bytes, self.batch_age_s)


class BridgeSettings(Settings):
    """The library's settings and the broker's (``CITYPIPE_MQTT__BROKER``, ...)."""

    mqtt: MqttSettings = MqttSettings()

    @classmethod
    def of(cls, settings: Settings, mqtt: MqttSettings) -> BridgeSettings:
        """Settings validated already (a laptop's stack), with a broker's."""
        fields = {name: getattr(settings, name) for name in type(settings).model_fields}
        return cls.model_construct(**fields, mqtt=mqtt)
