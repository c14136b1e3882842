"""What the city says to residents about their data, in plain words, once for every place.

The catalogue, the transparency register, the record of processing (GDPR Article 30) and
the portal each state the same things, from the city file alone: the guarantee of the
people counts per person and day (``core.disclosure.treatment``), the legal basis, the
DPIA, the data protection officer, the supervisory authority, and the data-subject rights
— including what Article 11 means here: once a day's key is destroyed, nobody can tell
which rows were a given phone's, so the rights that need that (access, rectification,
erasure, restriction, portability) can no longer be exercised on that day's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from citypipe.core.disclosure import treatment
from citypipe.domain.city import City, LegalBasis

BASES = {
    LegalBasis.PUBLIC_TASK: "GDPR Article 6(1)(e): a task carried out in the public interest "
    "or in the exercise of official authority",
    LegalBasis.LEGAL_OBLIGATION: "GDPR Article 6(1)(c): a legal obligation of the city",
    LegalBasis.LEGITIMATE_INTERESTS: "GDPR Article 6(1)(f): the city's legitimate interests",
    LegalBasis.CONSENT: "GDPR Article 6(1)(a): the consent of the people concerned",
}


@dataclass(frozen=True)
class Statements:
    """Everything the city states about personal data, each a sentence or a few."""

    guarantee: str  # the people counts' guarantee, per person and day, for a resident
    legal_basis: str
    dpia: str
    dpo: str
    authority: str
    rights: tuple[str, ...]


def statements(city: City) -> Statements | None:
    """What the city states about personal data; None where no source processes any."""
    processing = city.processing
    if processing is None or city.publisher.dpo_email is None:
        return None
    quantities = sorted(city.personal_quantities & city.declared_quantities)
    guarantee = treatment(city, quantities).resident if quantities else None
    dpia = processing.dpia
    return Statements(
        guarantee=guarantee or "No published dataset counts people.",
        legal_basis=f"{BASES[processing.legal_basis]}; {processing.legal_basis_detail}.",
        dpia=f"Data protection impact assessment {dpia.reference}"
        + (f", {dpia.url}" if dpia.url else "")
        + ".",
        dpo=f"Data protection officer: {city.publisher.dpo_email}.",
        authority=f"Supervisory authority: {processing.supervisory_authority.name}, "
        f"{processing.supervisory_authority.url}.",
        rights=_rights(city, processing.legal_basis),
    )


def _rights(city: City, basis: LegalBasis) -> tuple[str, ...]:
    """The data subjects' rights, as they stand for this processing and its legal basis."""
    days = city.key_retention_days
    authority = city.processing.supervisory_authority if city.processing else None
    rights = [
        "The published figures are about zones and 15-minute windows, never about you, "
        "and carry the guarantee above.",
        f"For {days} days a phone's address can still be matched to that day's stored "
        "code, and with it that day's rows: within that time you may write to the data "
        "protection officer to access, correct, restrict or erase them (Articles 15-18).",
        f"After {days} days the day's key is destroyed and the stored rows keep no code: "
        "the city can no longer identify you in that data (Article 11), so access, "
        "correction, erasure, restriction and portability (Articles 15-20) apply to it "
        "only if you provide information that lets your rows be found (Article 11(2)).",
    ]
    if basis in (LegalBasis.PUBLIC_TASK, LegalBasis.LEGITIMATE_INTERESTS):
        rights.append(
            "You may object to the processing at any time (Article 21) by writing to the "
            "data protection officer."
        )
    if basis is LegalBasis.CONSENT:
        rights.append(
            "You may withdraw your consent at any time (Article 7(3)), as easily as you "
            "gave it, by writing to the data protection officer."
        )
    if authority is not None:
        rights.append(f"You may complain to {authority.name} ({authority.url}).")
    return tuple(rights)
