"""The stage machinery: exactly-once effects around each core (``stage``, on the shared
kernel of ``kernel``), the edge every route enters by (``edge``: the webhook's checks in
``webhook``, drops in ``ingest``, the MQTT bridge in ``bridge`` and ``journal``), each
stage's use of it (``anonymize``, ``aggregate``, ``export/``) and the hourly job
(``housekeeping``). Talks to the world only through ports."""
