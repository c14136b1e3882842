"""citypipe_local: what runs only on a laptop or in CI, never in a city's cloud.

cli.py        the ``citypipe`` command: stack, simulate, replay, demo
simulate/     a deterministic city day of hub payloads (a module per hub) and its truth
replay.py     payloads through a fresh stack in the local runner, zones copied out
runner.py     Lambda's SQS event source mapping played locally (worker processes)
report.py     the run report: every stage's books, read back from lineage and DLQs
stack.py      provisioning a city stack on a local backend (up, down)
backends/     the embedded moto server and LocalStack on the host
fakes.py      in-memory adapters of every port
logs.py       the run's structured logs to a file

It imports the ``citypipe`` library; the library never imports it (import contracts in
pyproject.toml).
"""
