"""Modular input ``aws_ec2_inventory``: one event per EC2 instance, across accounts and regions."""

from __future__ import annotations

import sys

from iamspike_splunk import vendor

vendor.add_vendored_paths()

from iamspike.ingest import ec2_inventory
from iamspike_splunk import modinput
from iamspike_splunk.modinput import Argument

ARGUMENTS = [
    Argument("regions", "Regions", "Comma-separated regions to describe (default us-east-1)"),
    Argument("region", "Region", "Default region of the AWS clients, e.g. STS (default us-east-1)"),
    *[
        Argument("role_arn", "Role ARNs", "Comma-separated IAM roles, one per account (optional)")
        if arg.name == "role_arn"
        else arg
        for arg in modinput.AWS_ARGUMENTS
    ],
]

if __name__ == "__main__":
    sys.exit(
        modinput.run(
            sys.argv,
            ec2_inventory.INPUT,
            "EC2 inventory (IAM error spike)",
            "EC2 instances (IPs, instance role, tags) from DescribeInstances across accounts and regions",
            ARGUMENTS,
        )
    )
