"""Photos in an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage...), for servers that share them.

Keys are the same opaque keys as ``LocalPhotoStore``'s, under an optional prefix in one bucket.
Errors name the bucket and the endpoint, never the credentials.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from oneeye.store.photos import PhotoNotFoundError, PhotoStore, PhotoStoreError, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
DELETE_BATCH = 1000
"""Keys per DeleteObjects request (S3's limit)."""


class S3PhotoStore(PhotoStore):
    """Photos as objects in one S3 bucket.

    Args:
        bucket: the bucket's name.
        endpoint_url: the S3 server (``http://minio:9000``); ``None`` is AWS for ``region``.
        region: the bucket's region (``us-east-1`` when ``None``).
        access_key_id, secret_access_key: credentials; ``None`` uses boto3's usual chain
            (environment, shared config, instance role).
        prefix: a folder inside the bucket for every key (``oneeye/``), or ``""``.
        create_bucket: make the bucket when it does not exist (else that is an error).
        timeout: seconds for connecting and for each read.
        max_attempts: tries per request before giving up (boto3's standard retry mode).
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        create_bucket: bool = False,
        timeout: float = 10.0,
        max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise PhotoStoreError("an S3 photo store needs a bucket name")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self._where = f"bucket {bucket!r} at {endpoint_url or 'AWS S3'}"
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        self._region = region or "us-east-1"
        self._check_bucket(create_bucket)

    def _check_bucket(self, create: bool) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            code = _code(exc)
            if code not in _MISSING and code not in _NO_BUCKET:
                raise self._error("cannot open", exc) from None
        except BotoCoreError as exc:
            raise self._error("cannot reach", exc) from None
        if not create:
            raise PhotoStoreError(f"the photo store's {self._where} does not exist")
        logger.info("creating the photo %s", self._where)
        try:
            if self._region == "us-east-1":
                self._client.create_bucket(Bucket=self.bucket)
            else:
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self._region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise self._error("cannot create", exc) from None
        except BotoCoreError as exc:
            raise self._error("cannot reach", exc) from None

    def _error(self, what: str, exc: Exception) -> PhotoStoreError:
        if isinstance(exc, ClientError):
            detail = f"{_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}".strip()
        else:
            detail = str(exc)
        return PhotoStoreError(f"photo store {what} {self._where} ({detail.rstrip(': ')})")

    def _object(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        name = self._object(key)
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentType=mimetypes.guess_type(name)[0] or "application/octet-stream",
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(f"cannot write {key!r} to", exc) from None

    def get(self, key: str) -> bytes:
        name = self._object(key)
        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=name)
            return reply["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise PhotoNotFoundError(f"no photo {key!r}") from None
            raise self._error(f"cannot read {key!r} from", exc) from None
        except BotoCoreError as exc:
            raise self._error(f"cannot read {key!r} from", exc) from None

    def delete(self, key: str) -> bool:
        # S3 deletes succeed whether or not the object was there; ask first to answer truly.
        if not self.exists(key):
            return False
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(f"cannot delete {key!r} from", exc) from None
        return True

    def delete_many(self, keys: Iterable[str]) -> int:
        # One DeleteObjects request per thousand keys (S3's limit), not a HEAD and a DELETE
        # per key: a retention sweep deletes thousands of snapshots.
        names = [self._object(key) for key in keys]
        for start in range(0, len(names), DELETE_BATCH):
            chunk = names[start : start + DELETE_BATCH]
            try:
                reply = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": name} for name in chunk], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._error(f"cannot delete {len(chunk)} photos from", exc) from None
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise PhotoStoreError(
                    f"photo store could not delete {len(errors)} of {len(chunk)} photos from "
                    f"{self._where} (e.g. {first.get('Code', '')}: {first.get('Message', '')})"
                )
        return len(names)

    def exists(self, key: str) -> bool:
        name = self._object(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise self._error(f"cannot look up {key!r} in", exc) from None
        except BotoCoreError as exc:
            raise self._error(f"cannot look up {key!r} in", exc) from None
        return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
