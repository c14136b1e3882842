"""The ObjectStore port on the S3 API over an injected boto3 client: AWS, Scaleway, moto,
LocalStack, any S3-compatible provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from citypipe.adapters.boto import NOT_FOUND, classified, error_code
from citypipe.ports import Body, FileBody, ObjectInfo, ObjectStore, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3ObjectStore(ObjectStore):
    def __init__(self, client: S3Client) -> None:
        self.client = client

    @classified
    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if if_absent:
            extra["IfNoneMatch"] = "*"
        if isinstance(body, FileBody):  # streamed from the file (seekable: retries rewind)
            with body.path.open("rb") as file:
                response = self.client.put_object(Bucket=bucket, Key=key, Body=file, **extra)
        else:
            response = self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        return response["ETag"].strip('"')

    @classified
    def get(self, bucket: str, key: str) -> StoredObject:
        response = self.client.get_object(Bucket=bucket, Key=key)
        return StoredObject(key, response["ETag"].strip('"'), response["Body"].read())

    @classified
    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise
        return ObjectInfo(
            key, response["ETag"].strip('"'), response["ContentLength"], response["LastModified"]
        )

    @classified
    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    @classified
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        found = [
            ObjectInfo(item["Key"], item["ETag"].strip('"'), item["Size"], item["LastModified"])
            for page in pages
            for item in page.get("Contents", [])
        ]
        return iter(sorted(found, key=lambda o: o.key))
