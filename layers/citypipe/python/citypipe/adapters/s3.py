"""The ObjectStore port on the S3 API over an injected boto3 client: AWS, Scaleway, moto,
LocalStack, any S3-compatible provider."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from citypipe.adapters.boto import NOT_FOUND, classified, error_code
from citypipe.ports import Body, FileBody, ObjectInfo, ObjectStore, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def content_md5(body: bytes | IO[bytes]) -> str:
    """The Content-MD5 header of a body (a file is read through, then rewound)."""
    digest = hashlib.md5(usedforsecurity=False)
    if isinstance(body, bytes):
        digest.update(body)
    else:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
        body.seek(0)
    return base64.b64encode(digest.digest()).decode()


class S3ObjectStore(ObjectStore):
    def __init__(self, client: S3Client) -> None:
        self.client = client
        # A write to a bucket under Object Lock (the audit zone) must carry a checksum: a
        # client that computes none of its own (S3-compatible providers: Scaleway; any
        # client on a botocore older than 1.36, which has no such setting and computes
        # none for PutObject) sends Content-MD5, which they all take.
        self._md5 = getattr(client.meta.config, "request_checksum_calculation", None) in (
            "when_required",
            None,
        )

    def _put_object(self, bucket: str, key: str, body: bytes | IO[bytes], **extra: Any) -> str:
        """The object written; its ETag."""
        if self._md5:
            extra["ContentMD5"] = content_md5(body)
        response = self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        return response["ETag"].strip('"')

    @classified
    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if if_absent:
            extra["IfNoneMatch"] = "*"
        if isinstance(body, FileBody):  # streamed from the file (seekable: retries rewind)
            with body.path.open("rb") as file:
                return self._put_object(bucket, key, file, **extra)
        return self._put_object(bucket, key, body, **extra)

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
