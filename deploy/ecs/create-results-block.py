"""Save the prefect-aws S3Bucket block that flow results go through on ECS (docs/operations/ecs.md).

A sharded run's shards hand their figures back to the run that started them through Prefect's result
storage; on ECS every flow run is its own container, so that storage must be a bucket they all reach.
The block holds no keys: its AwsCredentials block is empty, so boto3's default chain finds the ECS task
role at run time. Run once per Prefect server or workspace (again to change the bucket or prefix):

    .venv/bin/python deploy/ecs/create-results-block.py --bucket yourco-exec-reports-results --region us-east-1

The work pool's job template (deploy/ecs/base-job-template.json) names the block in its env defaults:
PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK=s3-bucket/<block name>.
"""

from __future__ import annotations

import argparse

from prefect_aws import AwsCredentials
from prefect_aws.s3 import S3Bucket

DEFAULT_BLOCK_NAME = "exec-reports-results"


def storage_block_setting(block_name: str) -> str:
    """The value of PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK that names the block: <block type slug>/<name>."""
    return f"{S3Bucket.get_block_type_slug()}/{block_name}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Save the S3Bucket block for exec-reports' flow results.")
    parser.add_argument("--bucket", required=True, help="the results bucket's name")
    parser.add_argument("--block-name", default=DEFAULT_BLOCK_NAME,
                        help=f"the block's name (default {DEFAULT_BLOCK_NAME}, as the job template expects)")
    parser.add_argument("--prefix", default="", help="a folder inside the bucket for the results (default: none)")
    parser.add_argument("--region", default=None,
                        help="the bucket's region (default: the region of the task's environment)")
    return parser


def save_results_block(bucket: str, block_name: str = DEFAULT_BLOCK_NAME, prefix: str = "",
                       region: str | None = None) -> str:
    """Save (or replace) the block and return the setting that names it."""
    block = S3Bucket(bucket_name=bucket, bucket_folder=prefix, credentials=AwsCredentials(region_name=region))
    block.save(block_name, overwrite=True)
    return storage_block_setting(block_name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setting = save_results_block(args.bucket, args.block_name, args.prefix, args.region)
    where = f"s3://{args.bucket}/{args.prefix.strip('/')}" if args.prefix else f"s3://{args.bucket}"
    print(f"saved block {setting}: results go to {where}")
    print(f"flow runs need PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK={setting} (the job template's env default)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
