"""Core logic of TA-aws-iam-error-spike.

Plain Python (and numpy inside the math modules): CloudTrail parsing, failure classes, principal
folding, binning, baselines, scoring and the ingestion pipelines. This package never imports
splunklib nor ``iamspike_splunk``; the Splunk-facing adapters live in ``iamspike_splunk`` and the
entry scripts in ``bin/``.
"""

__version__ = "0.1.0"
