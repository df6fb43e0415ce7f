"""Ingestion pipelines: CloudTrail log files from S3 (via SQS notifications or by prefix) to events.

Pure Python plus botocore. The Splunk side (scheme, XML event stream, storage/passwords, log file)
lives in ``iamspike_splunk.modinput``; the pipelines here only see an ``EventSink``, a
``CheckpointStore``, a logger and a ``Deadline``.
"""
