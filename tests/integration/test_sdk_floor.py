"""The functions on the oldest AWS SDK they support (infra/lambda-runtime-sdk.txt): the Lambda layer
leaves botocore out, so the runtime's is the one that runs. A subprocess whose path holds
that botocore before the venv's builds every client as a composition root does and writes an
object as the audit zone needs it (a checksum for Object Lock, a conditional put): the
requests are caught before they leave and answered here, no endpoint needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repo import ROOT

FLOOR = ROOT / "infra" / "lambda-runtime-sdk.txt"

PROBE = """
import json, botocore
from botocore.awsrequest import AWSResponse
from citypipe.adapters.clients import s3_client, sqs_client, secretsmanager_client
from citypipe.adapters.s3 import S3ObjectStore
from citypipe.settings import BackendSettings

sent = []

class Empty:
    def stream(self, **_):
        yield b""

def answer(request, **_):
    sent.append({k.lower(): str(v, "ascii") if isinstance(v, bytes) else v
                 for k, v in request.headers.items()})
    return AWSResponse(request.url, 200, {"ETag": '"e"'}, Empty())

found = {"botocore": botocore.__version__, "puts": []}
for endpoint in (None, "https://s3.fr-par.scw.cloud"):
    backend = BackendSettings(
        endpoint_url=endpoint, region="eu-west-1", access_key_id="k", secret_access_key="s"
    )
    sqs_client(backend), secretsmanager_client(backend)
    client = s3_client(backend)
    client.meta.events.register("before-send.s3", answer)
    S3ObjectStore(client).put_if_absent("audit", "lineage/x.json", b"{}", "application/json")
    headers = sent.pop()
    found["puts"].append(
        {"md5": "content-md5" in headers, "if-none-match": headers.get("if-none-match")}
    )
print(json.dumps(found))
"""


@pytest.mark.slow  # installs the pinned SDK from PyPI (or pip's cache)
def test_the_functions_run_on_the_oldest_sdk_they_support(tmp_path: Path) -> None:
    # Given the pinned old botocore, alone, ahead of everything else on the path
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--require-hashes", "--target", str(tmp_path), "-r", str(FLOOR)],
        check=True,
    )  # fmt: skip
    path = [str(tmp_path), str(ROOT / "layers" / "citypipe" / "python")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    # When the clients are built and an audit record is written, AWS's way and Scaleway's
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False
    )
    # Then nothing refuses the old SDK, and each put carries Content-MD5 (the old SDK sends
    # no checksum of its own) and stays conditional
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    pinned = FLOOR.read_text().split("botocore==")[1].split()[0]
    assert found["botocore"] == pinned
    assert found["puts"] == [{"md5": True, "if-none-match": "*"}] * 2
