"""Runtime settings from the environment, validated once at cold start.

Names are ``CITYPIPE_SECTION__KEY``, e.g. ``CITYPIPE_BACKEND__ENDPOINT_URL``. Nothing else in
citypipe reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BackendSettings(BaseModel):
    endpoint_url: str | None = Field(
        default=None, description="S3/SQS endpoint; unset on AWS, set for moto/LocalStack/Scaleway"
    )
    region: str | None = Field(
        default=None, description="unset: the platform's (AWS_REGION on Lambda, AWS_DEFAULT_REGION)"
    )
    access_key_id: str | None = None
    secret_access_key: str | None = None


class StackSettings(BaseModel):
    city_file: Path = Path("city.yaml")
    name_prefix: str = Field(default="", description="prepended to bucket and queue names")
    visibility_timeout_s: int = Field(default=60, ge=0, le=43200)
    max_receive_count: int = Field(default=3, ge=1, le=1000)


class KeySettings(BaseModel):
    store: Literal["file", "secretsmanager"] = "file"
    directory: Path = Path(".citypipe/keys")
    secret_prefix: str = Field(
        default="citypipe",
        description="names the stack's secrets: <prefix>/<city>/keys/..., .../webhook-tokens/...",
    )


class WebhookSettings(BaseModel):
    """Where ingest finds the digests of the hubs' per-source webhook tokens."""

    tokens: Literal["file", "secretsmanager"] = "file"
    directory: Path = Path(".citypipe/webhook-tokens")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CITYPIPE_", env_nested_delimiter="__", extra="forbid"
    )

    stack: StackSettings = StackSettings()
    backend: BackendSettings = BackendSettings()
    keys: KeySettings = KeySettings()
    webhook: WebhookSettings = WebhookSettings()
    log_level: str = "INFO"
    localstack_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LOCALSTACK_ENDPOINT", "CITYPIPE_LOCALSTACK_ENDPOINT"),
        description="a LocalStack the user already runs; else citypipe starts one",
    )
    platform_region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="the region the platform runs the function in (Lambda sets AWS_REGION)",
    )

    @property
    def region(self) -> str | None:
        """Where the clients go: the configured region, else the platform's."""
        return self.backend.region or self.platform_region

    def clients_backend(self) -> BackendSettings:
        """The backend settings the clients are built with: the region resolved here, so
        the residency guard checks the very region the clients use."""
        return self.backend.model_copy(update={"region": self.region})
