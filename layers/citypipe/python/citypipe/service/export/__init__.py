"""export: publish a day of every theme, then the open zone's metadata; one room a job.

day.py       a day's export: which themes are due, each published on its own, failures kept
spill.py     the day's partials spilled by window to scratch files, merged a few at a time
people.py    a day's people counts: released once, at a fixed time, from the clean zone
devices.py   the day's people contributions spilled by device, bounded a few at a time
writer.py    every theme's files of the day from one pass over the spill, into local files
ledger.py    the ε ledger: what a release of people counts costs; refused over budget
versions.py  publication records: a day's version and what changed, every published day
metadata.py  the register, the catalogue, the data package and the portal, from the records
requests.py  an export request from the queue: the day it names, or every day
withdrawal.py  a withdrawn partner's readings purged, its days published again

Callers use these doors: ``export_day`` (the hourly job), ``export_request`` (the queue),
``ExportPorts`` (what a composition root gives export).
"""

from citypipe.service.export.day import ExportPorts, export_day
from citypipe.service.export.requests import days_with_partials, export_request

__all__ = ["ExportPorts", "days_with_partials", "export_day", "export_request"]
