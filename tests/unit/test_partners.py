"""Partners (issue 21): who shares which sources, for which purposes; their ODRL permission
records, machine-readable and printable; provenance and policies in the catalogue."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rdflib
from open_support import catalogue_graph, export_every_theme, open_body
from unit_support import city_data

from citypipe.core.publish.dcat import dataset_uri
from citypipe.core.publish.odrl import policy, policy_iri, policy_key, policy_text
from citypipe.domain.city import City, ConfigError, parse_city
from citypipe.domain.partners import (
    DEFAULT_PURPOSES,
    Purpose,
    datasets_fed,
    partner_of,
    purposes_of,
)
from citypipe.service.kernel import Deps

ODRL = rdflib.Namespace("http://www.w3.org/ns/odrl/2/")
PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
DPV = rdflib.Namespace("https://w3id.org/dpv#")
PARTNER = "velden-mobility"


def test_the_example_city_has_one_partner_whose_source_feeds_traffic_flow_only(
    city: City,
) -> None:
    assert list(city.partners) == [PARTNER]
    assert city.partners[PARTNER].sources == ["operator-counters"]
    assert datasets_fed(city, "operator-counters") == ["traffic-flow"]
    assert partner_of(city, "operator-counters") == PARTNER
    assert partner_of(city, "traffic-counters") is None


def test_the_purposes_are_the_dga_objectives_each_a_dpv_purpose() -> None:
    assert {p.value: p.iri.removeprefix(str(DPV)) for p in Purpose} == {
        "health": "ImproveHealthcare",
        "climate": "CombatClimateChange",
        "mobility": "ImproveTransportMobility",
        "official-statistics": "ProvideOfficialStatistics",
        "public-services": "ImprovePublicServices",
        "policy-making": "PublicPolicyMaking",
        "research": "ScientificResearch",
    }


def test_a_dataset_is_published_for_its_declared_purposes_else_its_themes(city: City) -> None:
    assert {d: [p.value for p in ps] for d, ps in DEFAULT_PURPOSES.items()} == {
        "air-quality": ["health"], "noise": ["health"], "traffic-flow": ["mobility"],
        "parking": ["mobility"], "people-counts": ["public-services"], "energy": ["climate"],
    }  # fmt: skip
    assert purposes_of(city, "traffic-flow") == (Purpose.MOBILITY,)
    assert purposes_of(city, "air-quality") == DEFAULT_PURPOSES["air-quality"]
    assert purposes_of(city, "weather") == (Purpose.PUBLIC_SERVICES,)


def refusals(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as refused:
        parse_city(data, "velden.yaml")
    assert "\n" not in str(refused.value)
    return {p.key: p.message for p in refused.value.problems}


def test_a_partner_source_feeding_a_dataset_it_does_not_permit_is_refused() -> None:
    # the operator's counters also measure NO2: air quality is published for health
    data = city_data()
    data["registry"]["profiles"]["tc-csv"]["fields"]["no2"] = {"quantity": "air.no2"}
    found = refusals(data)
    assert list(found) == [f"partners.{PARTNER}.purposes"]
    assert found[f"partners.{PARTNER}.purposes"].startswith(
        "its source operator-counters feeds air-quality, published for ['health'], which "
        "velden-mobility does not permit"
    )
    # permitted once the partner agrees
    data["partners"][PARTNER]["purposes"].append("health")
    assert datasets_fed(parse_city(data), "operator-counters") == ["air-quality", "traffic-flow"]


def test_a_source_has_one_owner() -> None:
    data = city_data()
    data["partners"]["second"] = {**data["partners"][PARTNER], "name": "Another"}
    assert list(refusals(data)) == ["partners.second.sources.0"]


def test_a_city_without_partners_has_none() -> None:
    data = city_data()
    del data["partners"]
    assert parse_city(data).partners == {}


def graph_of(document: dict[str, Any]) -> rdflib.Graph:
    return rdflib.Graph().parse(data=json.dumps(document), format="json-ld")


def test_the_permission_record_is_an_odrl_agreement_with_a_purpose_constraint(
    city: City,
) -> None:
    graph = graph_of(policy(city, PARTNER))
    agreement = rdflib.URIRef(policy_iri(city, PARTNER))
    assert (agreement, rdflib.RDF.type, ODRL.Agreement) in graph
    assigner = graph.value(agreement, ODRL.assigner)
    assert graph.value(assigner, DCT.identifier) == rdflib.Literal("NL.KVK.87654321")
    assert graph.value(agreement, ODRL.assignee) == rdflib.URIRef(city.publisher.url)
    permissions = list(graph.objects(agreement, ODRL.permission))
    actions = {graph.value(p, ODRL.action) for p in permissions}
    assert actions == {ODRL.aggregate, ODRL.anonymize, ODRL.distribute}
    for permission in permissions:
        constraint = graph.value(permission, ODRL.constraint)
        assert graph.value(constraint, ODRL.leftOperand) == ODRL.purpose
        assert graph.value(constraint, ODRL.operator) == ODRL.isAnyOf
        assert set(graph.objects(constraint, ODRL.rightOperand)) == {
            DPV.ImproveTransportMobility,
            DPV.ProvideOfficialStatistics,
        }
    [duty] = [graph.value(p, ODRL.duty) for p in permissions if graph.value(p, ODRL.duty)]
    assert graph.value(duty, ODRL.action) == ODRL.delete
    assert str(graph.value(graph.value(duty, ODRL.constraint), ODRL.rightOperand)) == "P3650D"
    assert graph.value(agreement, DCT.license) == rdflib.URIRef(city.licence)
    legal_basis = rdflib.URIRef("https://w3id.org/dpv/legal/eu/dga#A2-6-Permission")
    assert graph.value(agreement, DPV.hasLegalBasis) == legal_basis


def test_the_printed_record_says_the_same_terms(city: City) -> None:
    text = policy_text(city, PARTNER)
    assert text.startswith("# Velden Mobility Services B.V. shares its readings with Velden")
    for said in ("NL.KVK.87654321", "improving mobility", "official statistics",
                 "traffic-flow", city.licence, "at most 3650 days", "Withdrawal",
                 policy_iri(city, PARTNER)):  # fmt: skip
        assert said in text


def test_the_catalogue_says_where_each_dataset_comes_from_and_under_which_permission(
    memory_deps: Deps,
) -> None:
    deps = export_every_theme(memory_deps)
    graph = catalogue_graph(deps)
    traffic = rdflib.URIRef(dataset_uri(deps.city, "traffic-flow"))
    air = rdflib.URIRef(dataset_uri(deps.city, "air-quality"))
    partner_data = rdflib.URIRef(f"{policy_iri(deps.city, PARTNER)}#data")
    assert set(graph.objects(traffic, PROV.wasDerivedFrom)) == {
        partner_data,
        rdflib.URIRef(f"{dataset_uri(deps.city, 'register')}#traffic-counters"),
    }
    assert set(graph.objects(traffic, ODRL.hasPolicy)) == {
        rdflib.URIRef(policy_iri(deps.city, PARTNER))
    }
    assert "Velden Mobility Services B.V." in str(
        graph.value(graph.value(traffic, DCT.provenance), rdflib.RDFS.label)
    )
    distributions = list(
        graph.objects(traffic, rdflib.URIRef("http://www.w3.org/ns/dcat#distribution"))
    )
    assert distributions and all(
        graph.value(d, ODRL.hasPolicy) == rdflib.URIRef(policy_iri(deps.city, PARTNER))
        for d in distributions
    )
    # a dataset no partner feeds: its provenance, no policy
    assert partner_data not in set(graph.objects(air, PROV.wasDerivedFrom))
    assert graph.value(air, DCT.provenance) is not None
    assert graph.value(air, ODRL.hasPolicy) is None
    # the policy the catalogue names is published where its IRI says, printable beside it
    published = json.loads(open_body(deps, policy_key(deps.city, PARTNER)))
    assert published == policy(deps.city, PARTNER)
    assert open_body(deps, policy_key(deps.city, PARTNER, "md")).decode() == policy_text(
        deps.city, PARTNER
    )


def test_a_purpose_for_a_theme_the_city_does_not_publish_is_accepted() -> None:
    # a city extending another inherits its dataset_purposes
    data = city_data()
    data["dataset_purposes"]["noise"] = ["health", "research"]
    assert purposes_of(parse_city(data), "noise") == (Purpose.HEALTH, Purpose.RESEARCH)


def test_each_purpose_is_said_in_the_acts_words() -> None:
    assert {p.value: p.label for p in Purpose} == {
        "health": "healthcare",
        "climate": "combating climate change",
        "mobility": "improving mobility",
        "official-statistics": "official statistics",
        "public-services": "improving the provision of public services",
        "policy-making": "public policy making",
        "research": "scientific research in the general interest",
    }


def with_partner(**values: Any) -> dict[str, Any]:
    data = city_data()
    data["partners"][PARTNER].update(values)
    return data


PARTNER_REFUSED = {
    "no-name": ({"name": ""}, "name", "at least 1 character"),
    "no-identifier": ({"identifier": ""}, "identifier", "at least 1 character"),
    "no-source": ({"sources": []}, "sources", "at least 1 item"),
    "no-purpose": ({"purposes": []}, "purposes", "at least 1 item"),
    "kept-no-day": ({"retention_days": 0}, "retention_days", "greater than or equal to 1"),
}


@pytest.mark.parametrize(
    ("values", "key", "said"), PARTNER_REFUSED.values(), ids=list(PARTNER_REFUSED)
)  # fmt: skip
def test_a_partner_past_its_bounds_is_refused_at_its_key(
    values: dict[str, Any], key: str, said: str
) -> None:
    found = refusals(with_partner(**values))
    assert said in found[f"partners.{PARTNER}.{key}"]


def test_a_partner_at_its_bounds_is_accepted() -> None:
    data = with_partner(name="B", identifier="X", purposes=["mobility"], retention_days=1)
    data["retention_days"] = {"clean": 1, "aggregates": 1}
    partner = parse_city(data).partners[PARTNER]
    assert (partner.name, partner.identifier, partner.retention_days) == ("B", "X", 1)
    with pytest.raises(ValueError, match="frozen"):
        partner.name = "C"  # type: ignore[misc]


def test_the_city_keeps_the_partners_readings_no_longer_than_it_allows_in_either_zone() -> None:
    # as long as it allows: accepted (the example keeps aggregates 730 days, clean 90)
    assert parse_city(with_partner(retention_days=730)).partners[PARTNER].retention_days == 730
    aggregates = refusals(with_partner(retention_days=729))[f"partners.{PARTNER}.retention_days"]
    assert aggregates.startswith("the city keeps aggregates 730 days")
    data = with_partner(retention_days=80)
    data["retention_days"] = {"clean": 90, "aggregates": 80}
    clean = refusals(data)[f"partners.{PARTNER}.retention_days"]
    assert clean.startswith("the city keeps clean 90 days")


def test_a_licence_is_the_same_with_or_without_its_last_slash() -> None:
    data = with_partner(licence="https://creativecommons.org/licenses/by/4.0")
    assert parse_city(data).partners[PARTNER].licence.endswith("4.0")
    data["licence"] = "https://creativecommons.org/licenses/by/4.0"
    data["partners"][PARTNER]["licence"] = "https://creativecommons.org/licenses/by/4.0/"
    assert parse_city(data).licence.endswith("4.0")
