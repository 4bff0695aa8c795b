"""The shared record store on S3: every write conditional (If-None-Match / If-Match)."""

from __future__ import annotations

from flows.delivery.message import slug
from flows.delivery.records.model import DeliveryKey, Record


class S3RecordStore:
    """The same layout under ``s3://bucket/prefix/``. Every write is conditional (``If-None-Match: *``
    to create, ``If-Match: <ETag>`` to replace), so workers on different machines share one truth and
    a late write can never overwrite a newer record."""

    def __init__(self, bucket: str, prefix: str = "exec-reports/deliveries", *, client=None,
                 region: str | None = None, endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._region, self._endpoint_url = region, endpoint_url

    @property
    def client(self):
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def _folder(self, backend: str, period: str) -> str:
        return "/".join(part for part in (self.prefix, slug(backend), slug(period)) if part)

    def _object_key(self, backend: str, key: DeliveryKey) -> str:
        return f"{self._folder(backend, key.period)}/{key.file_name}"

    def _get_object(self, object_key: str) -> Record | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except self.client.exceptions.NoSuchKey:
            return None
        return Record.from_json(response["Body"].read(), response["ETag"], f"s3://{self.bucket}/{object_key}")

    def get(self, backend: str, key: DeliveryKey) -> Record | None:
        return self._get_object(self._object_key(backend, key))

    def write(self, record: Record, expected_version: str | None) -> str | None:
        from botocore.exceptions import ClientError

        condition = {"IfNoneMatch": "*"} if expected_version is None else {"IfMatch": expected_version}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self._object_key(record.backend, record.key),
                                              Body=record.to_json(), ContentType="application/json", **condition)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412) or exc.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
                return None
            raise
        return response["ETag"]

    def list(self, backend: str, period: str) -> list[Record]:
        records = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._folder(backend, period) + "/"):
            for item in page.get("Contents", []):
                record = self._get_object(item["Key"])
                if record is not None and record.key.period == period:
                    records.append(record)
        return records

    def __repr__(self) -> str:
        return f"S3RecordStore(s3://{self.bucket}/{self.prefix})"
