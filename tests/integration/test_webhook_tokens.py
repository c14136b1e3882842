"""`citypipe webhook-token` mints a source's token against a real Secrets Manager API (the
embedded moto server), and ingest's adapter reads back what it stored: the token works,
the store holds its digest only."""

from __future__ import annotations

import json

import pytest
from repo import CITY_FILE

from citypipe.adapters.clients import secretsmanager_client
from citypipe.adapters.tokens import SecretsManagerWebhookTokens
from citypipe.domain.naming import StackNames
from citypipe.ports import token_digest
from citypipe_local.backends import Endpoint
from citypipe_local.cli import main


def mint(
    endpoint: Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> str:
    monkeypatch.setenv("CITYPIPE_BACKEND", endpoint.settings.model_dump_json())
    monkeypatch.setenv("CITYPIPE_KEYS__SECRET_PREFIX", "citypipe-cli-test")
    code = main(["webhook-token", "--city", str(CITY_FILE), "--store", "secretsmanager", *args])
    said = capsys.readouterr()
    assert code == 0, said.err
    return said.out.strip().splitlines()[-1]


def test_a_minted_token_is_accepted_by_ingest_and_stored_as_a_digest(
    embedded: Endpoint, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operator minting a token for the air-quality hub
    token = mint(embedded, monkeypatch, capsys, "--source", "air-quality", "--revoke-previous")
    # When ingest's adapter checks it (another container: a fresh adapter)
    client = secretsmanager_client(embedded.settings)
    tokens = SecretsManagerWebhookTokens(client, "citypipe-cli-test", "velden")
    # Then the token is the source's, and the secret holds its digest, never the token
    assert tokens.verify("air-quality", token)
    name = StackNames("velden").webhook_token_secret("citypipe-cli-test", "air-quality")
    stored = client.get_secret_value(SecretId=name)["SecretString"]
    assert json.loads(stored) == {"sha256": [token_digest(token)]}
    assert token not in stored


def test_minting_for_a_source_the_city_does_not_have_is_refused(
    embedded: Endpoint, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYPIPE_BACKEND", embedded.settings.model_dump_json())
    code = main(["webhook-token", "--city", str(CITY_FILE), "--source", "cameras"])
    [said] = capsys.readouterr().err.splitlines()
    assert code == 2
    assert "--source cameras: no such source" in said
