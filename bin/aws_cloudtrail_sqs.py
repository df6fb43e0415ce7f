"""Modular input ``aws_cloudtrail_sqs``: CloudTrail log files announced on an SQS queue."""

from __future__ import annotations

import sys

from iamspike_splunk import vendor

vendor.add_vendored_paths()

from iamspike.ingest import sqs
from iamspike_splunk import modinput
from iamspike_splunk.modinput import Argument

ARGUMENTS = [
    Argument("queue_url", "SQS queue URL", "https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE", required=True),
    Argument("region", "Region", "AWS region of the queue (default: from the queue URL)"),
    Argument("batch_size", "Batch size", "Messages per receive, 1-10 (default 10)", data_type="number"),
    Argument("wait_seconds", "Long poll seconds", "0-20 (default 20)", data_type="number"),
    Argument(
        "visibility_timeout",
        "Visibility timeout",
        "Seconds, extended for slow files (300)",
        data_type="number",
    ),
    Argument(
        "max_record_bytes", "Max record bytes", "Larger records are skipped (1000000)", data_type="number"
    ),
    Argument(
        "dedup_window",
        "De-dup window",
        "eventIDs remembered against redeliveries (200000)",
        data_type="number",
    ),
    *modinput.AWS_ARGUMENTS,
]

if __name__ == "__main__":
    sys.exit(
        modinput.run(
            sys.argv,
            sqs.INPUT,
            "CloudTrail via SQS (IAM error spike)",
            "CloudTrail log files from S3, announced by S3/SNS/CloudTrail notifications on an SQS queue",
            ARGUMENTS,
        )
    )
