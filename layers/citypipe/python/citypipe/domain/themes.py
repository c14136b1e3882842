"""What the open zone publishes: one dataset per theme the city's sources declare.

A theme gathers the quantities of one family (``air.*`` -> air quality) and says how they
are published: the title and description of the dataset, the EU data theme, the
High-Value Datasets category where the theme qualifies, the FIWARE Smart Data Model its
NGSI-LD entities follow, and per quantity the statistic a day is summarized by.
Themes come from the quantities the city's sources declare (``themes_of``): a city
without noise sensors publishes no noise dataset; a quantity family citypipe has no
theme for yet is published under a plain theme named after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from citypipe.domain.model import QUANTITY_UNITS

if TYPE_CHECKING:  # the city file checks its budget against the themes (domain.city)
    from citypipe.domain.city import City

# The HVD implementing regulation (EU) 2023/138, and its categories (EU vocabulary
# http://data.europa.eu/bna/asd487ae75).
HVD_REGULATION = "http://data.europa.eu/eli/reg_impl/2023/138/oj"
HVD_ENVIRONMENT = "http://data.europa.eu/bna/c_dd313021"  # Earth observation and environment
HVD_MOBILITY = "http://data.europa.eu/bna/c_b79e35eb"
HVD_METEOROLOGICAL = "http://data.europa.eu/bna/c_164e0bf5"
DATA_THEME = "http://publications.europa.eu/resource/authority/data-theme/"

ENVIRONMENT_CONTEXT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
    "context.jsonld"
)
WEATHER_CONTEXT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Weather/master/context.jsonld"
)
TRANSPORTATION_CONTEXT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/"
    "context.jsonld"
)

# How a day of a quantity is summed up per zone: the mean of its readings (a
# concentration), their total (vehicles counted) or the most distinct devices seen in one
# window (people: readings are detections, devices are what a count means).
Summary = Literal["mean", "total", "peak"]


class OpenFormat(StrEnum):
    """The formats every theme's day is published in."""

    CSV = "csv"
    PARQUET = "parquet"
    GEOJSON = "geojson"
    NGSI_LD = "ngsi-ld"
    RDF = "rdf"  # SOSA/SSN and SAREF observations, in Turtle

    @property
    def extension(self) -> str:
        return {"ngsi-ld": "jsonld", "rdf": "ttl"}.get(self.value, self.value)


@dataclass(frozen=True)
class Measure:
    """How one quantity is published."""

    quantity: str
    name: str  # short name: the NGSI-LD attribute where the model has one, chart labels
    title: str
    summary: Summary

    @property
    def unit(self) -> str:
        return QUANTITY_UNITS[self.quantity]


@dataclass(frozen=True)
class SmartDataModel:
    type: str  # the NGSI-LD entity type
    context: str
    attributes: dict[str, str]  # quantity -> the model's attribute
    # quantity -> the factor from citypipe's unit to the model's (% -> a fraction, Pa -> hPa)
    scales: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Theme:
    slug: str  # the dataset's public name, in every key and URL
    family: str  # the quantity prefix: "air" for air.no2
    title: str
    description: str
    data_theme: str  # EU data theme code (ENVI, TRAN, SOCI, ENER, TECH)
    keywords: tuple[str, ...]
    hvd_category: str | None = None
    model: SmartDataModel | None = None
    # models of some of its quantities that the main one cannot carry (pedestrians are no
    # vehicle type of TrafficFlowObserved: they are a CrowdFlowObserved)
    also: tuple[SmartDataModel, ...] = ()

    @property
    def models(self) -> tuple[SmartDataModel, ...]:
        return () if self.model is None else (self.model, *self.also)

    def owns(self, quantity: str) -> bool:
        return quantity.split(".", 1)[0] == self.family


MEASURES: dict[str, Measure] = {
    m.quantity: m
    for m in (
        Measure("air.no2", "no2", "Nitrogen dioxide (NO2)", "mean"),
        Measure("air.pm10", "pm10", "Particulate matter PM10", "mean"),
        Measure("air.pm25", "pm25", "Particulate matter PM2.5", "mean"),
        Measure("air.o3", "o3", "Ozone (O3)", "mean"),
        Measure("noise.laeq", "LAeq", "Equivalent sound level LAeq", "mean"),
        Measure("traffic.vehicles", "vehicles", "Vehicles counted", "total"),
        Measure("traffic.bicycles", "bicycles", "Bicycles counted", "total"),
        Measure("traffic.heavy_vehicles", "heavy_vehicles", "Heavy vehicles counted", "total"),
        Measure("traffic.pedestrians", "pedestrians", "Pedestrians counted", "total"),
        Measure("people.presence", "devices", "Distinct devices seen", "peak"),
        Measure("parking.occupancy", "occupancy", "Parking occupancy", "mean"),
        Measure("energy.active", "energy", "Active energy", "total"),
        Measure("weather.temperature", "temperature", "Air temperature", "mean"),
        Measure("weather.humidity", "humidity", "Relative humidity", "mean"),
        Measure("weather.pressure", "pressure", "Atmospheric pressure", "mean"),
        Measure("weather.wind_speed", "wind_speed", "Wind speed", "mean"),
        Measure("weather.wind_direction", "wind_direction", "Wind direction", "mean"),
        Measure("weather.precipitation", "precipitation", "Precipitation", "total"),
        Measure("weather.illuminance", "illuminance", "Illuminance", "mean"),
        Measure("weather.uv_index", "uv_index", "UV index", "mean"),
    )
}

THEMES: tuple[Theme, ...] = (
    Theme(
        "air-quality",
        "air",
        "Air quality",
        "Concentrations of air pollutants measured by the city's air quality monitors.",
        "ENVI",
        ("air quality", "pollution", "NO2", "particulate matter"),
        HVD_ENVIRONMENT,
        SmartDataModel(
            "AirQualityObserved",
            ENVIRONMENT_CONTEXT,
            {"air.no2": "no2", "air.pm10": "pm10", "air.pm25": "pm25", "air.o3": "o3"},
        ),
    ),
    Theme(
        "noise",
        "noise",
        "Noise levels",
        "A-weighted equivalent sound levels measured by the city's noise monitors.",
        "ENVI",
        ("noise", "sound level", "environment"),
        HVD_ENVIRONMENT,
        SmartDataModel("NoiseLevelObserved", ENVIRONMENT_CONTEXT, {"noise.laeq": "LAeq"}),
    ),
    Theme(
        "traffic-flow",
        "traffic",
        "Traffic flow",
        "Vehicles (heavy vehicles among them), bicycles and pedestrians counted by the "
        "city's traffic counters.",
        "TRAN",
        ("traffic", "mobility", "vehicles"),
        HVD_MOBILITY,
        SmartDataModel(
            "TrafficFlowObserved",
            TRANSPORTATION_CONTEXT,
            {
                "traffic.vehicles": "intensity",
                "traffic.heavy_vehicles": "intensity",
                "traffic.bicycles": "intensity",
            },
        ),
        (
            SmartDataModel(
                "CrowdFlowObserved",
                TRANSPORTATION_CONTEXT,
                {"traffic.pedestrians": "peopleCount"},
            ),
        ),
    ),
    Theme(
        "parking",
        "parking",
        "Parking occupancy",
        "Occupancy of the city's parking facilities.",
        "TRAN",
        ("parking", "mobility"),
        HVD_MOBILITY,
    ),
    Theme(
        "people-counts",
        "people",
        "People counts",
        "How many distinct devices the city's people counters saw: footfall, never "
        "anyone's movements.",
        "SOCI",
        ("footfall", "people counting", "crowd"),
        None,
        SmartDataModel(
            "CrowdFlowObserved", TRANSPORTATION_CONTEXT, {"people.presence": "peopleCount"}
        ),
    ),
    Theme(
        "weather",
        "weather",
        "Weather",
        "Air temperature, humidity, pressure, wind and rain measured by the city's sensors.",
        "ENVI",
        ("weather", "meteorology", "temperature", "humidity"),
        HVD_METEOROLOGICAL,
        SmartDataModel(
            "WeatherObserved",
            WEATHER_CONTEXT,
            {
                "weather.temperature": "temperature",
                "weather.humidity": "relativeHumidity",
                "weather.pressure": "atmosphericPressure",
                "weather.wind_speed": "windSpeed",
                "weather.wind_direction": "windDirection",
                "weather.precipitation": "precipitation",
                "weather.illuminance": "illuminance",
                "weather.uv_index": "uVIndexMax",
            },
            {"weather.humidity": 0.01, "weather.pressure": 0.01},
        ),
    ),
    Theme(
        "energy",
        "energy",
        "Energy",
        "Energy measured by the city's meters.",
        "ENER",
        ("energy", "meters"),
    ),
)


def measure_of(quantity: str) -> Measure:
    """How a quantity is published; one citypipe has no entry for is published by mean."""
    found = MEASURES.get(quantity)
    if found is not None:
        return found
    name = quantity.split(".", 1)[-1]
    return Measure(quantity, name, name.replace("_", " ").capitalize(), "mean")


def _plain(family: str) -> Theme:
    title = family.replace("-", " ").capitalize()
    return Theme(family, family, title, f"{title} readings.", "TECH", (family,))


def theme_of(quantity: str) -> Theme:
    """The theme a quantity is published in (a plain one for an unknown family)."""
    for theme in THEMES:
        if theme.owns(quantity):
            return theme
    return _plain(quantity.split(".", 1)[0])


def theme_named(slug: str) -> Theme:
    """The theme of a published dataset's slug (a plain one for an unknown family)."""
    return next((t for t in THEMES if t.slug == slug), None) or _plain(slug)


def themes_of(city: City) -> list[Theme]:
    """The themes the city's sources declare quantities of, in a stable order."""
    found = {theme_of(q).slug: theme_of(q) for q in city.declared_quantities}
    known = [t for t in THEMES if t.slug in found]
    return known + sorted((t for t in found.values() if t not in THEMES), key=lambda t: t.slug)


def quantities_of(city: City, theme: Theme) -> list[str]:
    """The theme's quantities the city declares, sorted."""
    return sorted(q for q in city.declared_quantities if theme.owns(q))
