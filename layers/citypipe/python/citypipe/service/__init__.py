"""The stage machinery: exactly-once effects around each core (``stage``), each function's
use of it (``ingest``, ``anonymize``, ``aggregate``, ``export``) and the hourly job
(``housekeeping``). Talks to the world only through the ports in ``Deps``."""
