"""The photo stores by name: ``ONEEYE_PHOTO_STORE`` picks one (a local folder or an S3 bucket).

Apart from ``store.photos`` (the interface and the local folder) so that the interface never
imports a backend; boto3 is imported only by a server that keeps its photos in S3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from oneeye.errors import OneEyeError
from oneeye.store.photos import LocalPhotoStore, PhotoStore

if TYPE_CHECKING:
    from oneeye.config import ServeSettings


def _local_store(settings: ServeSettings) -> PhotoStore:
    return LocalPhotoStore(settings.resolved_photos_dir())


def _s3_store(settings: ServeSettings) -> PhotoStore:
    from oneeye.store.s3 import S3PhotoStore  # noqa: PLC0415 (boto3 only when chosen)

    s3 = settings.s3
    if not s3.bucket:
        raise OneEyeError("ONEEYE_PHOTO_STORE=s3 needs a bucket: set ONEEYE_S3__BUCKET")
    return S3PhotoStore(
        s3.bucket,
        endpoint_url=s3.endpoint_url,
        region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        prefix=s3.prefix,
        create_bucket=s3.create_bucket,
    )


PHOTO_STORES: Mapping[str, Callable[[ServeSettings], PhotoStore]] = {
    "local": _local_store,
    "s3": _s3_store,
}
"""The photo stores by the name ``ONEEYE_PHOTO_STORE`` gives; adding one is its module and a
line here (and its name in ``ServeSettings.photo_store``)."""


def make_photo_store(settings: ServeSettings) -> PhotoStore:
    """The photo store ``settings.photo_store`` names.

    Raises:
        OneEyeError: no store has that name, or the store's settings are incomplete.
    """
    factory = PHOTO_STORES.get(settings.photo_store)
    if factory is None:
        known = ", ".join(sorted(PHOTO_STORES))
        raise OneEyeError(f"unknown photo store {settings.photo_store!r}; known stores: {known}")
    return factory(settings)
