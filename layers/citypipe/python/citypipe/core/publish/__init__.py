"""What export publishes in the open zone, as pure functions of a day's disclosed cells
and of the publication records: tables (CSV, Parquet, day summaries), GeoJSON, NGSI-LD,
the DCAT-AP catalogue (JSON-LD, Turtle), the Frictionless data package and the portal."""
