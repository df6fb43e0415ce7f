// The page's own checks, the same rules as bin/iamspike/ingest (accounts.py, aws.py,
// settings.py): one message naming the field, shown inline before anything is written.
// Inputs are checked again by splunkd, which runs the input's --validate-arguments.

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;
const ROLE_ARN = /^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;
const KEY_ID = /^(AKIA|ASIA)[A-Z0-9]{12,128}$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;
const QUEUE_URL = /^https?:\/\/[^/?#\s]+\/\d{12}\/[A-Za-z0-9_-]{1,80}(\.fifo)?$/;

export function checkName(what, name, taken) {
    if (!name.trim()) {
        return `${what} is required`;
    }
    if (!NAME.test(name.trim())) {
        return `${what} "${name}" must be 1-128 letters, digits or _ . @ - (starting with a letter or digit)`;
    }
    if (taken.includes(name.trim())) {
        return `${what} "${name.trim()}" already exists`;
    }
    return '';
}

export function checkRegions(text, field = 'regions') {
    const bad = text
        .split(',')
        .map((r) => r.trim())
        .filter((r) => r && !REGION.test(r));
    return bad.length ? `${field}: "${bad[0]}" is not an AWS region (for example us-east-1)` : '';
}

// -> {field: message} for an account form ({name, auth, keyId, secret, roleArn, externalId, regions}).
export function checkAccount(form, taken, editing) {
    const errors = {};
    const name = editing ? '' : checkName('Account name', form.name, taken);
    if (name) errors.name = name;
    if (form.auth === 'static_key') {
        const changingKey = form.keyId || form.secret || !editing || !form.hadKey;
        if (changingKey && !KEY_ID.test(form.keyId.trim())) {
            errors.keyId = 'Access key ID must look like AKIA... (20 letters and digits)';
        } else if (changingKey && !form.secret) {
            errors.secret = 'Secret access key is required with an access key ID';
        }
    }
    if (form.roleArn.trim() && !ROLE_ARN.test(form.roleArn.trim())) {
        errors.roleArn = `Role ARN "${form.roleArn.trim()}" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)`;
    }
    if (form.externalId.trim()) {
        if (!EXTERNAL_ID.test(form.externalId.trim())) {
            errors.externalId = 'External ID must be 2-1224 characters of [A-Za-z0-9+=,.@:/-]';
        } else if (!form.roleArn.trim()) {
            errors.externalId = 'External ID is set but Role ARN is not';
        }
    }
    const regions = checkRegions(form.regions, 'Default regions');
    if (regions) errors.regions = regions;
    return errors;
}

export function checkProxy(form) {
    const errors = {};
    if (form.host.trim() && !HOST.test(form.host.trim())) {
        errors.host = `Host "${form.host.trim()}" is not a host name or address`;
    }
    if (form.host.trim() && !(/^\d+$/.test(form.port.trim()) && +form.port >= 1 && +form.port <= 65535)) {
        errors.port = 'Port must be 1-65535';
    }
    if (form.password && !form.username.trim()) {
        errors.username = 'A proxy password needs its user name';
    }
    return errors;
}

export function checkQueueUrl(url) {
    if (!url.trim()) return 'SQS queue URL is required (https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE)';
    if (!QUEUE_URL.test(url.trim())) {
        return `queue_url "${url.trim()}" is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE)`;
    }
    return '';
}
