"""The portal's pages for residents, static and self-contained like the portal's page:

- ``register/sensors.html``: the sensor register (``core.publish.sensors``), a table with
  an anchor per sensor — its register entry;
- ``register/notices/<sensor>.html``: a printable notice per sensor (GDPR Article 13's
  information: who, why, on what basis, what is kept and how long, the rights, where to
  complain), with its register entry's address written out, to mount next to the device;
- ``optout.html``: the opt-out form (it posts to the city file's ``optout_url``) and how
  many devices are opted out, never which;
- ``rights.html``: what a rights request can and cannot find (``core.publish.rights``).

No script, no CDN, no web font; one stylesheet (``assets/residents.css``, with print
rules), linked relatively. Written for WCAG 2.1 AA (the axe-core check in the tests).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from html import escape

from citypipe.core.publish.dcat import public_url
from citypipe.core.publish.pages import DOCUMENT_START, relative
from citypipe.core.publish.rights import rights_claims
from citypipe.core.publish.sensors import sensor_rows
from citypipe.core.publish.statements import statements
from citypipe.domain.city import City
from citypipe.domain.limits import OPTOUT_RELOAD_S
from citypipe.domain.naming import StackNames

STYLESHEET = """\
:root { color-scheme: light; --ink: #1d2733; --muted: #4a5563; --accent: #1a5f78;
  --line: #c9d2dc; --paper: #ffffff; --soft: #f3f6f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--soft); }
header, main, footer { max-width: 62rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.5rem; }
h1 { font-size: 1.7rem; margin: 0 0 .5rem; }
h2 { font-size: 1.3rem; margin: 1.25rem 0 .5rem; }
a { color: var(--accent); overflow-wrap: anywhere; }
p, li, dd, td { overflow-wrap: anywhere; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem; margin: 0 0 1rem; }
.muted { color: var(--muted); }
.table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem;
  border-bottom: 1px solid var(--line); }
dt { font-weight: 600; margin-top: .5rem; }
dd { margin: 0 0 .25rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input[type=text] { font: inherit; padding: .4rem .5rem; width: 100%; max-width: 22rem;
  border: 1px solid var(--muted); border-radius: 4px; }
button { font: inherit; margin-top: .5rem; padding: .4rem 1rem; color: #fff;
  background: var(--accent); border: 0; border-radius: 4px; cursor: pointer; }
.notice h1 { font-size: 1.5rem; }
.entry { font-family: ui-monospace, monospace; }
@media print {
  @page { size: A4; margin: 12mm; }
  body { background: #fff; font-size: 10pt; line-height: 1.35; }
  h1 { font-size: 16pt; } h2 { font-size: 12pt; margin: .5rem 0 .25rem; }
  dt { margin-top: .25rem; }
  header, main, footer { max-width: none; padding: 0; }
  section { border: 0; padding: 0; margin: 0 0 .6rem; }
  nav, .screen { display: none; }
  a { color: #000; text-decoration: none; }
  .entry { font-size: 12pt; font-weight: 600; }
}
"""


def _page(city: City, key: str, title: str, body: str, css_class: str = "") -> str:
    """A page of the open zone at ``key``: its stylesheet linked relatively."""
    names = StackNames(city.slug)
    css = relative(key, names.asset_key("residents.css"))
    portal = relative(key, names.portal_key())
    attrs = f' class="{css_class}"' if css_class else ""
    return "\n".join(
        [
            *DOCUMENT_START,
            f"<title>{escape(title)} · {escape(city.name)}</title>",
            f'<link rel="stylesheet" href="{escape(css)}">',
            "</head>",
            f"<body{attrs}>",
            "<header>",
            f'<nav aria-label="Site"><p><a href="{escape(portal)}">{escape(city.name)} open '
            "sensor data</a></p></nav>",
            f"<h1>{escape(title)}</h1>",
            "</header>",
            f"<main>{body}</main>",
            f"<footer><p>{escape(city.publisher.name)} · {escape(city.publisher.email)}</p>"
            "</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


SENSOR_TABLE = (
    ("kind", "Kind"), ("zone_name", "Zone"), ("owner", "Owner"), ("purpose", "Purpose"),
    ("measures", "Measures"), ("personal_data", "Personal data"), ("contact", "Contact"),
)  # fmt: skip


def sensors_html(city: City, rows: Sequence[dict[str, str]]) -> str:
    """The sensor register as a page: a row per sensor, its anchor its register entry."""
    names = StackNames(city.slug)
    head = "".join(f'<th scope="col">{title}</th>' for _, title in SENSOR_TABLE)
    body = "".join(
        f'<tr id="{escape(r["sensor"])}"><th scope="row">'
        f'<a href="notices/{escape(r["sensor"])}.html">{escape(r["sensor"])}</a></th>'
        + "".join(f"<td>{escape(r[key])}</td>" for key, _ in SENSOR_TABLE)
        + f"<td>{escape(r['latitude'])}, {escape(r['longitude'])}</td></tr>"
        for r in rows
    )
    files = " · ".join(
        f'<a href="sensor-register.{ext}">{label}</a>'
        for ext, label in (("json", "JSON"), ("csv", "CSV"))
    )
    text = (
        f"<section><p>Every sensor {escape(city.name)} runs in public space: where it is, "
        "whose it is, why it is there, what it measures and what it does with personal "
        "data. Each sensor's name opens the notice mounted next to it. Also as "
        f"{files}. Generated from the city's configuration.</p>"
        f'<div class="table"><table><caption class="muted">{len(rows)} sensors</caption>'
        f'<thead><tr><th scope="col">Sensor</th>{head}<th scope="col">Position '
        "(latitude, longitude)</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div></section>"
    )
    return _page(city, names.sensor_page_key(), "Sensor register", text)


def _rights_items(city: City, row: dict[str, str]) -> str:
    """The rights, where to exercise them, and where to complain."""
    names = StackNames(city.slug)
    said = statements(city)
    items = [
        f"Ask about your data: {escape(city.publisher.dpo_email or row['contact'])}.",
        "What a request can find, and what it cannot: "
        + escape(public_url(city, names.rights_page_key())),
    ]
    if row["opt_out"] == "yes":
        items.append(
            "Object (Article 21): opt your phone's address out and no sensor counts it: "
            f"{escape(public_url(city, names.optout_page_key()))}"
        )
    if said is not None:
        items.append(escape(said.authority.removeprefix("Supervisory authority: ")))
    return "".join(f"<li>{item}</li>" for item in items)


def notice_html(city: City, row: dict[str, str]) -> str:
    """A sensor's printable notice (GDPR Article 13), with its register entry written out."""
    names = StackNames(city.slug)
    personal = row["personal_data"] == "yes"
    facts = [
        ("What it measures", row["measures"]),
        ("Where", f"{row['zone_name']} ({row['latitude']}, {row['longitude']}: {row['position']})"),
        ("Why", row["purpose"]),
        ("Owner", row["owner"]),
        ("Responsible for the data (controller)", f"{row['controller']}, {city.publisher.email}"),
        ("Contact", row["contact"]),
        (
            "Personal data",
            row["personal_fields"] if personal else "none: it processes no personal data",
        ),
    ]
    if personal:
        facts += [
            ("Legal basis", row["legal_basis"]),
            ("Kept", f"pseudonyms live {city.key_retention_days} days, raw readings 24 hours; "
                     "only anonymous counts per zone are published"),
        ]  # fmt: skip
    facts.append(("What is published", row["guarantee"] or row["treatment"]))
    listed = "".join(f"<dt>{escape(t)}</dt><dd>{escape(v)}</dd>" for t, v in facts)
    rights = (
        f"<section><h2>Your rights</h2><ul>{_rights_items(city, row)}</ul></section>"
        if personal
        else ""
    )
    entry = escape(row["register_url"])  # written out: the printed notice's link
    body = (
        f"<section><p>{escape(row['kind'])}. Information under Article 13 of the GDPR.</p>"
        f"<dl>{listed}</dl></section>{rights}"
        "<section><h2>This sensor in the register</h2>"
        f'<p class="entry"><a href="{entry}">{entry}</a></p>'
        '<p class="screen muted">Print this page to mount it next to the sensor.</p></section>'
    )
    return _page(city, names.notice_key(row["sensor"]), f"Sensor {row['sensor']}", body, "notice")


def optout_html(city: City, opted_out: int) -> str:
    """The opt-out form, and how many devices are opted out (never which)."""
    names = StackNames(city.slug)
    minutes = OPTOUT_RELOAD_S // 60
    if city.optout_url is not None:
        form = (
            f'<form method="post" action="{escape(city.optout_url)}">'
            '<label for="address">Your device\'s Wi-Fi or Bluetooth address</label>'
            '<input type="text" id="address" name="address" autocomplete="off" '
            'spellcheck="false" inputmode="text" aria-describedby="address-hint" required>'
            '<p id="address-hint" class="muted">Six pairs of letters and digits, such as '
            "00:1A:2B:3C:4D:5E: your phone's settings show it (Wi-Fi details, or About).</p>"
            '<button type="submit">Opt out</button></form>'
        )
    else:
        form = f"<p>Write to {escape(city.publisher.dpo_email or city.publisher.email)}.</p>"
    body = (
        "<section><p>Some sensors count phones by their Wi-Fi or Bluetooth address, replaced "
        "at once by a code that changes every day. If you do not want your device counted, "
        f"opt it out: within {minutes} minutes no sensor counts it, and nothing of its "
        "detections is written. The address is kept only as a keyed hash, never in clear, "
        f"never published.</p>{form}</section>"
        f"<section><h2>How many</h2><p>{_how_many(opted_out)} opted out.</p></section>"
        "<section><h2>What it can and cannot do</h2><p>An opt-out knows your device by the "
        "address you give. Many phones show a randomised address instead of their own, and "
        "change it: give the address your phone uses on the city's Wi-Fi or in Bluetooth, "
        "and again if it changes. Anyone can opt out any address: that only removes a "
        "device from the counts. It does not reach back: "
        f'<a href="{escape(relative(names.optout_page_key(), names.rights_page_key()))}">'
        "your rights</a> say what a request can still find.</p></section>"
    )
    return _page(city, names.optout_page_key(), "Opt out of being counted", body)


def rights_html(city: City) -> str:
    """What a rights request can and cannot find, one claim after the other."""
    names = StackNames(city.slug)
    said = statements(city)
    claims = "".join(
        f'<section id="{c.id}"><h2>{escape(c.question)}</h2><p>{escape(c.answer)}</p></section>'
        for c in rights_claims(city)
    )
    write = escape(city.publisher.dpo_email or city.publisher.email)
    optout = escape(relative(names.rights_page_key(), names.optout_page_key()))
    end = f"<p>{escape(said.authority)}</p>" if said is not None else ""
    body = (
        f"<section><p>Write to {write} for access, erasure or any other right; "
        f'<a href="{optout}">opt out</a> to object to being counted. What follows is what the '
        f"design lets the city find, and what it cannot.</p>{end}</section>{claims}"
    )
    return _page(city, names.rights_page_key(), "Your rights and your data", body)


def _how_many(opted_out: int) -> str:
    return "1 device is" if opted_out == 1 else f"{opted_out} devices are"


def residents_files(city: City, opted_out: int) -> Iterator[tuple[str, tuple[bytes, str]]]:
    """Key, (bytes, content type) of the residents' pages and their stylesheet, one at a
    time: a notice a sensor, thousands in a big city, never all made at once."""
    names = StackNames(city.slug)
    html = "text/html; charset=utf-8"
    rows = sensor_rows(city)
    yield names.asset_key("residents.css"), (STYLESHEET.encode(), "text/css; charset=utf-8")
    yield names.sensor_page_key(), (sensors_html(city, rows).encode(), html)
    yield names.optout_page_key(), (optout_html(city, opted_out).encode(), html)
    yield names.rights_page_key(), (rights_html(city).encode(), html)
    for row in rows:
        yield names.notice_key(row["sensor"]), (notice_html(city, row).encode(), html)
