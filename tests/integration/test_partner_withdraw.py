"""`citypipe partner withdraw NAME` against a stack on the embedded moto server: the
withdrawal is recorded in the audit zone, and the edge of another container refuses the
partner's sources from then on; an unknown partner is refused on one line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from repo import CITY_FILE

from citypipe.bootstrap import deps_from
from citypipe.domain.books import WithdrawalRequested
from citypipe.domain.model import Zone
from citypipe.service.kernel import Deps
from citypipe.service.partners import withdrawn_sources
from citypipe.settings import Settings
from citypipe_local.backends import Endpoint
from citypipe_local.cli import main


def test_a_partner_withdrawn_from_the_command_line_is_refused_by_the_edge(
    embedded: Endpoint,
    fresh_stack: Callable[[Endpoint], tuple[Settings, Deps]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, deps = fresh_stack(embedded)
    monkeypatch.setenv("CITYPIPE_BACKEND", embedded.settings.model_dump_json())
    monkeypatch.setenv("CITYPIPE_STACK__NAME_PREFIX", settings.stack.name_prefix)
    assert withdrawn_sources(deps) == frozenset()

    code = main(["partner", "withdraw", "velden-mobility", "--city", str(CITY_FILE)])

    said = capsys.readouterr().err
    assert code == 0, said
    assert "velden-mobility's permission is withdrawn" in said
    assert "nothing of velden-mobility is left in the clean and aggregate zones" in said
    audit = deps.names.bucket(Zone.AUDIT)
    body = deps.store.get(audit, deps.names.withdrawal_key("velden-mobility")).body
    assert WithdrawalRequested.model_validate_json(body).sources == ["operator-counters"]
    # another container's edge (its own store: nothing remembered) refuses them
    other = Settings(backend=embedded.settings, stack=settings.stack)

    assert withdrawn_sources(deps_from(other)) == frozenset({"operator-counters"})


def test_withdrawing_a_partner_the_city_does_not_have_is_refused(
    embedded: Endpoint,
    fresh_stack: Callable[[Endpoint], tuple[Settings, Deps]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, _ = fresh_stack(embedded)
    monkeypatch.setenv("CITYPIPE_BACKEND", embedded.settings.model_dump_json())
    monkeypatch.setenv("CITYPIPE_STACK__NAME_PREFIX", settings.stack.name_prefix)
    code = main(["partner", "withdraw", "nobody", "--city", str(CITY_FILE)])
    [said] = capsys.readouterr().err.splitlines()
    assert code == 2
    assert said.endswith("partner withdraw: nobody is no partner of velden (['velden-mobility'])")
