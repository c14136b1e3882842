"""Runtime settings from the environment, validated once at cold start.

Names are ``CITYPIPE_SECTION__KEY``, e.g. ``CITYPIPE_BACKEND__ENDPOINT_URL``. Nothing else in
citypipe reads the environment.

Each service may live at its own endpoint with its own credentials — Scaleway's Queues
have their own endpoint and keys, apart from Object Storage's: ``CITYPIPE_STORAGE__…``,
``CITYPIPE_QUEUES__…`` and ``CITYPIPE_SECRETS__…`` override, field by field, the defaults
in ``CITYPIPE_BACKEND__…``.

A section may also come whole, as JSON (``CITYPIPE_STACK='{"city_file": …}'``: what a
deployment sets), its ``CITYPIPE_SECTION__KEY`` variables merged over it; names are
matched whatever their case; what the code passes wins over the environment. (This module
reads the environment itself: pydantic-settings did it for ~40 ms of every cold start.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Self, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

PREFIX = "citypipe_"
NESTED = "__"


class BackendSettings(BaseModel):
    """Where a service answers, and as whom. Unset: the platform's (AWS)."""

    endpoint_url: str | None = Field(
        default=None, description="S3/SQS endpoint; unset on AWS, set for moto/LocalStack/Scaleway"
    )
    region: str | None = Field(
        default=None, description="unset: the platform's (AWS_REGION on Lambda, AWS_DEFAULT_REGION)"
    )
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def over(self, defaults: BackendSettings) -> Self:
        """These settings, each unset field taken from ``defaults``."""
        return self.model_copy(
            update={k: v for k, v in defaults.model_dump().items() if getattr(self, k) is None}
        )


class StackSettings(BaseModel):
    deployment: Literal["cloud", "local"] = Field(
        default="cloud", description="local: a laptop's replay or demo (allows the file key store)"
    )
    city_file: Path = Path("city.yaml")
    name_prefix: str = Field(default="", description="prepended to bucket and queue names")
    visibility_timeout_s: int | None = Field(
        default=None,
        ge=0,
        le=43200,
        description="`stack up` on an emulator: every queue's (unset: 60); on Scaleway it "
        "comes from each function's timeout and may not be set",
    )
    max_receive_count: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="`stack up` on an emulator: receives before the DLQ (unset: 3); on "
        "Scaleway it comes from each function's timeout and may not be set",
    )
    principals: list[str] = Field(
        default_factory=list,
        description="`stack up --cloud scaleway`: the IAM principals the open bucket's "
        "policy keeps (application_id:<id>, user_id:<id>): the functions' application and "
        "the operator",
    )
    readers: list[str] = Field(
        default_factory=list,
        description="`stack up --cloud scaleway`: the IAM principals that may list and read "
        "the open bucket and nothing else (application_id:<id>): the open-data API's",
    )


class KeySettings(BaseModel):
    store: Literal["object", "secretsmanager", "file"] = Field(
        default="object",
        description="object: the stack's private keys bucket (every cloud); secretsmanager: "
        "AWS only; file: a laptop only (not shared between containers: refused in a cloud)",
    )
    directory: Path = Path(".citypipe/keys")
    secret_prefix: str = Field(
        default="citypipe",
        description="names the stack's secrets: <prefix>/<city>/keys/..., .../webhook-tokens/...",
    )


class WebhookSettings(BaseModel):
    """Where ingest finds the digests of the hubs' per-source webhook tokens, and whether
    requests are buffered."""

    tokens: Literal["object", "secretsmanager", "file"] = Field(
        default="object",
        description="object: the stack's keys bucket (every cloud); secretsmanager: AWS only; "
        "file: a laptop",
    )
    directory: Path = Path(".citypipe/webhook-tokens")
    buffered: bool = Field(
        default=True,
        description="hand each request's pseudonymous readings to ingest's queue, written in "
        "batches (service.buffer); false: an object per request",
    )


class PollSettings(BaseModel):
    """The poller of hub APIs (``sources.<s>.poll``): where their keys are, how long a tick."""

    keys: Literal["object", "secretsmanager", "file"] = Field(
        default="object",
        description="where the APIs' keys are: object: the stack's keys bucket (every cloud); "
        "secretsmanager: AWS only; file: a laptop",
    )
    directory: Path = Path(".citypipe/api-keys")
    budget_s: float = Field(
        default=60.0, ge=5.0, le=800.0, description="a tick's time, under the function's timeout"
    )


class ExportSettings(BaseModel):
    """The day's export."""

    compress_spills: bool = Field(
        default=False,
        description="lz4 on the day's spills in scratch (the partials and the people "
        "release's devices): ~2.7 and ~2.5 times smaller for ~0.01 and ~0.02 CPU s per "
        "MB spilled; for a fixed scratch disk (Scaleway's 1 GiB): decision 0118",
    )


def _is_json(annotation: Any) -> bool:
    """Whether a variable for a field of this type is JSON: a section, a list, a mapping."""
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_json(arg) for arg in get_args(annotation) if arg is not NoneType)
    origin = get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, (BaseModel, list, dict, set, tuple))


def _section_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


class SettingsError(ValueError):
    """A variable that cannot be read (its value is never repeated: it may hold a key)."""


def _value(variable: str, annotation: Any, text: str) -> Any:
    """A variable's text as the field takes it: parsed when the field is JSON."""
    if not _is_json(annotation):
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"{variable.upper()} is not JSON: {exc}") from None


def _merged(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``under``, section by section."""
    merged = dict(under)
    for key, value in over.items():
        below = merged.get(key)
        both = isinstance(below, dict) and isinstance(value, dict)
        merged[key] = _merged(below, value) if both else value  # type: ignore[arg-type]
    return merged


def from_environment(
    model: type[BaseModel], variables: dict[str, str], prefix: str = PREFIX
) -> dict[str, Any]:
    """A model's fields from ``variables`` (names lower-cased): ``<prefix><field>`` (JSON
    for a section or a list), a section's ``<prefix><field>__<key>`` merged over it; a
    field with aliases is named by them alone, without the prefix."""
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices):
            for alias in info.validation_alias.choices:
                if isinstance(alias, str) and alias.lower() in variables:
                    values[alias] = _value(alias, info.annotation, variables[alias.lower()])
                    break
            continue
        variable = prefix + name
        if variable in variables:
            values[name] = _value(variable, info.annotation, variables[variable])
        section = _section_model(info.annotation)
        nested = from_environment(section, variables, variable + NESTED) if section else {}
        if nested:
            whole = values.get(name, {})
            values[name] = _merged(whole, nested) if isinstance(whole, dict) else whole
    return values


class Settings(BaseModel):
    """What the code passes, over the ``CITYPIPE_*`` environment, over the defaults."""

    model_config = ConfigDict(extra="forbid")

    def __init__(self, **given: Any) -> None:
        variables = {name.lower(): value for name, value in os.environ.items()}
        super().__init__(**_merged(from_environment(type(self), variables), given))

    stack: StackSettings = StackSettings()
    backend: BackendSettings = BackendSettings()  # the defaults of every service
    storage: BackendSettings = BackendSettings()  # S3 API: the zones and the keys bucket
    queues: BackendSettings = BackendSettings()  # SQS API
    secrets: BackendSettings = BackendSettings()  # Secrets Manager (AWS only)
    keys: KeySettings = KeySettings()
    webhook: WebhookSettings = WebhookSettings()
    poll: PollSettings = PollSettings()
    export: ExportSettings = ExportSettings()
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

    def service(self, name: Literal["storage", "queues", "secrets"]) -> BackendSettings:
        """The endpoint, region and credentials one service's client is built with: its
        own, else the backend's, the region resolved here (else the platform's), so the
        residency guard checks the very region the clients use."""
        own: BackendSettings = getattr(self, name)
        merged = own.over(self.backend)
        return merged.model_copy(update={"region": merged.region or self.platform_region})
