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
    secret_prefix: str = "citypipe"  # noqa: S105 (a name, not a secret)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CITYPIPE_", env_nested_delimiter="__", extra="forbid"
    )

    stack: StackSettings = StackSettings()
    backend: BackendSettings = BackendSettings()
    keys: KeySettings = KeySettings()
    log_level: str = "INFO"
    localstack_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LOCALSTACK_ENDPOINT", "CITYPIPE_LOCALSTACK_ENDPOINT"),
        description="a LocalStack the user already runs; else citypipe starts one",
    )
