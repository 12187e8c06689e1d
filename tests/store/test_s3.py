"""S3PhotoStore against a real S3-compatible HTTP server (moto's, on loopback): buckets,
prefixes, and errors that name the bucket and endpoint but never the secret."""

from __future__ import annotations

import socket
import uuid
from typing import TYPE_CHECKING

import boto3
import pytest
from moto.server import ThreadedMotoServer

from oneeye.store.photos import PhotoNotFoundError, PhotoStoreError
from oneeye.store.s3 import S3PhotoStore
from tests.store.conftest import S3Server, make_s3_store

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.s3


def _raw_client(server: S3Server) -> S3Client:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )


def test_objects_land_under_the_prefix(s3_server: S3Server) -> None:
    store = make_s3_store(s3_server, prefix="site-a")
    key = store.add("snapshots", b"photo bytes")
    listed = _raw_client(s3_server).list_objects_v2(Bucket=store.bucket)
    assert [o["Key"] for o in listed["Contents"]] == [f"site-a/{key}"]
    assert store.get(key) == b"photo bytes"
    head = _raw_client(s3_server).head_object(Bucket=store.bucket, Key=f"site-a/{key}")
    assert head["ContentType"] == "image/jpeg"


def test_two_prefixes_in_one_bucket_do_not_see_each_other(s3_server: S3Server) -> None:
    first = make_s3_store(s3_server, prefix="one/")
    second = S3PhotoStore(
        first.bucket,
        endpoint_url=s3_server.endpoint_url,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
        prefix="two",
    )
    key = first.add("templates", b"x")
    assert first.exists(key)
    assert not second.exists(key)
    with pytest.raises(PhotoNotFoundError):
        second.get(key)
    assert second.delete(key) is False
    assert first.get(key) == b"x"


def test_bucket_in_another_region_is_created(s3_server: S3Server) -> None:
    store = make_s3_store(s3_server, region="eu-west-1")
    key = store.add("snapshots", b"eu")
    assert store.get(key) == b"eu"
    location = _raw_client(s3_server).get_bucket_location(Bucket=store.bucket)
    assert location["LocationConstraint"] == "eu-west-1"


def test_existing_bucket_is_used_as_it_is(s3_server: S3Server) -> None:
    store = make_s3_store(s3_server)
    key = store.add("snapshots", b"kept")
    again = S3PhotoStore(
        store.bucket,
        endpoint_url=s3_server.endpoint_url,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
        create_bucket=True,
    )
    assert again.get(key) == b"kept"


def test_missing_bucket_without_create_is_a_clear_error(s3_server: S3Server) -> None:
    bucket = f"absent-{uuid.uuid4().hex[:12]}"
    with pytest.raises(PhotoStoreError) as caught:
        S3PhotoStore(
            bucket,
            endpoint_url=s3_server.endpoint_url,
            access_key_id=s3_server.access_key_id,
            secret_access_key=s3_server.secret_access_key,
        )
    message = str(caught.value)
    assert bucket in message
    assert s3_server.endpoint_url in message
    assert "does not exist" in message
    assert s3_server.secret_access_key not in message


def test_unreachable_endpoint_names_bucket_and_endpoint_not_secret() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    secret = "very-secret-value-123"
    with pytest.raises(PhotoStoreError) as caught:
        S3PhotoStore(
            "photos",
            endpoint_url=endpoint,
            access_key_id="key",
            secret_access_key=secret,
            timeout=1.0,
            max_attempts=1,
        )
    message = str(caught.value)
    assert "'photos'" in message
    assert endpoint in message
    assert "cannot reach" in message
    assert secret not in message


def test_server_gone_after_start_is_a_photo_store_error() -> None:
    own = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    own.start()
    host, port = own.get_host_and_port()
    server = S3Server(endpoint_url=f"http://{host}:{port}")
    try:
        store = make_s3_store(server)
        key = store.add("snapshots", b"x")
    finally:
        own.stop()
    with pytest.raises(PhotoStoreError, match="cannot read") as caught:
        store.get(key)
    assert not isinstance(caught.value, PhotoNotFoundError)
    assert server.endpoint_url in str(caught.value)
    assert server.secret_access_key not in str(caught.value)


def test_empty_bucket_name_refused() -> None:
    with pytest.raises(PhotoStoreError, match="needs a bucket"):
        S3PhotoStore("")
