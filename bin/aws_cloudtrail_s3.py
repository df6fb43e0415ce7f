"""Modular input ``aws_cloudtrail_s3``: a trail bucket walked by prefix, then incrementally."""

from __future__ import annotations

import sys

from iamspike_splunk import vendor

vendor.add_vendored_paths()

from iamspike.ingest import s3
from iamspike_splunk import modinput
from iamspike_splunk.modinput import Argument

ARGUMENTS = [
    Argument("bucket", "Bucket", "The trail's S3 bucket", required=True),
    Argument("prefix", "Prefix", "The trail's S3 key prefix before AWSLogs/ (optional)"),
    Argument("start_date", "Start date", "YYYY-MM-DD, first day to read (default: 7 days ago)"),
    Argument("accounts", "Accounts", "Comma-separated account ids (default: all)"),
    Argument("regions", "Regions", "Comma-separated regions (default: all)"),
    Argument("overlap_minutes", "Overlap minutes", "Late files picked up this far back (60)", "number"),
    Argument("max_record_bytes", "Max record bytes", "Larger records are skipped (1000000)", "number"),
    Argument("dedup_window", "De-dup window", "eventIDs remembered (200000)", "number"),
    Argument("drop_pending", "Drop pending files", "Comma-separated keys of pending files to give up on"),
    Argument("region", "Region", "AWS region of the bucket (default us-east-1)"),
    *modinput.AWS_ARGUMENTS,
]

if __name__ == "__main__":
    sys.exit(
        modinput.run(
            sys.argv,
            s3.INPUT,
            "CloudTrail from S3 by prefix (IAM error spike)",
            "CloudTrail log files read from a trail bucket by prefix, from a start date",
            ARGUMENTS,
        )
    )
