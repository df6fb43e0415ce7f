// The four input kinds and the settings the Inputs form offers for each (README/inputs.conf.spec
// has them all; a stanza's other settings are kept as they are when it is edited).
export const KINDS = {
    aws_cloudtrail_sqs: {
        label: 'CloudTrail via SQS',
        fields: [
            ['queue_url', 'SQS queue URL', 'https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE'],
            ['region', 'Region', 'default: from the queue URL'],
        ],
        summary: (c) => c.queue_url,
    },
    aws_cloudtrail_s3: {
        label: 'CloudTrail files in S3',
        fields: [
            ['bucket', 'Bucket', 'the trail bucket'],
            ['prefix', 'Prefix', 'optional, before AWSLogs/'],
            ['start_date', 'Start date', 'YYYY-MM-DD (default: 7 days ago)'],
            ['regions', 'Regions', 'default: the account\'s, else every region found'],
        ],
        summary: (c) => `s3://${c.bucket || ''}/${c.prefix || ''}`,
    },
    aws_cloudtrail_lookup: {
        label: 'CloudTrail LookupEvents',
        fields: [
            ['regions', 'Regions', 'default: the account\'s, else us-east-1'],
            ['backfill_days', 'Backfill days', '1-90 (default 7)'],
        ],
        summary: (c) => c.regions || 'us-east-1',
    },
    aws_ec2_inventory: {
        label: 'EC2 inventory',
        fields: [
            ['regions', 'Regions', 'default: the account\'s, else us-east-1'],
            ['role_arn', 'Role ARNs', 'one per account, comma-separated (optional)'],
        ],
        summary: (c) => c.regions || 'us-east-1',
    },
};

export const COMMON_FIELDS = [
    ['interval', 'Interval', 'seconds or a cron schedule (default 300)'],
    ['index', 'Index', 'default: main'],
];
