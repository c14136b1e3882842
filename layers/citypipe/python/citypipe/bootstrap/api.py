"""The open-data API's composition root: the city file and S3, nothing else — the API reads
the open zone only (its role grants nothing more), and holds no queue, no key store."""

from __future__ import annotations

from functools import cache

from citypipe.adapters.clients import s3_client
from citypipe.adapters.s3 import S3ObjectStore
from citypipe.bootstrap import city_from
from citypipe.domain.naming import StackNames
from citypipe.entrypoints.api import ApiApp
from citypipe.service.api import OpenData
from citypipe.settings import Settings


def build(data: OpenData) -> ApiApp:
    return ApiApp(data)


@cache
def cold_start() -> ApiApp:
    settings = Settings()
    city = city_from(settings)
    store = S3ObjectStore(s3_client(settings.service("storage")))
    return build(OpenData(city, StackNames(city.slug, settings.stack.name_prefix), store))
