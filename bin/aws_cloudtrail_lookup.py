"""Modular input ``aws_cloudtrail_lookup``: CloudTrail management events from the LookupEvents API."""

from __future__ import annotations

import sys

from iamspike_splunk import vendor

vendor.add_vendored_paths()

from iamspike.ingest import lookup
from iamspike_splunk import modinput
from iamspike_splunk.modinput import Argument

ARGUMENTS = [
    Argument(
        "regions", "Regions", "Comma-separated regions to page (default us-east-1, where IAM events land)"
    ),
    Argument(
        "backfill_days", "Backfill days", "Days back on the first run, 1-90 (default 7)", data_type="number"
    ),
    Argument(
        "overlap",
        "Overlap seconds",
        "Re-read window for late delivery, 0-3600 (default 900)",
        data_type="number",
    ),
    Argument(
        "requests_per_second",
        "Requests per second",
        "Per region, at most the API's 2 (default 1.9)",
        data_type="number",
    ),
    Argument("region", "Region", "Default region of the AWS clients, e.g. STS (default us-east-1)"),
    *modinput.AWS_ARGUMENTS,
]

if __name__ == "__main__":
    sys.exit(
        modinput.run(
            sys.argv,
            lookup.INPUT,
            "CloudTrail LookupEvents (IAM error spike)",
            "CloudTrail management events of the last 90 days from the LookupEvents API, per region",
            ARGUMENTS,
        )
    )
