// splunkd's REST API through Splunk Web's proxy (/<locale>/splunkd/__raw/...), in the app's
// namespace, JSON in and out. Splunk Web checks the session cookie and, on every request that
// changes something, the X-Splunk-Form-Key header against its CSRF cookie.

export const APP = 'TA-aws-iam-error-spike';
export const ACCOUNTS_CONF = 'aws_iam_error_spike_accounts';
export const SETTINGS_CONF = 'aws_iam_error_spike_settings';
export const ACCOUNT_REALM = 'TA-aws-iam-error-spike-account';
export const PROXY_REALM = 'TA-aws-iam-error-spike-proxy';

function locale() {
    const first = window.location.pathname.split('/')[1];
    return /^[a-z]{2}-[A-Z]{2}$/.test(first) ? first : 'en-US';
}

function formKey() {
    if (window.$C && window.$C.FORM_KEY) {
        return window.$C.FORM_KEY;
    }
    const match = document.cookie.match(/(?:^|;\s*)splunkweb_csrf_token_\d+=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : '';
}

export class RestError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

// The first message splunkd sends back ({"messages": [{"type": "ERROR", "text": ...}]}).
function messageOf(status, body) {
    try {
        const parsed = JSON.parse(body);
        const messages = (parsed && parsed.messages) || [];
        if (messages.length && messages[0].text) {
            return messages[0].text;
        }
    } catch (e) {
        // not JSON: fall through
    }
    return `splunkd answered HTTP ${status}`;
}

function url(path, query) {
    const params = new URLSearchParams({ output_mode: 'json', ...(query || {}) });
    const ns = `/servicesNS/nobody/${encodeURIComponent(APP)}/`;
    return `/${locale()}/splunkd/__raw${ns}${path}?${params}`;
}

export async function request(method, path, { query, form } = {}) {
    const headers = { 'X-Requested-With': 'XMLHttpRequest', 'X-Splunk-Form-Key': formKey() };
    let body;
    if (form) {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
        body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url(path, query), { method, headers, body, credentials: 'include' });
    const text = await response.text();
    if (!response.ok) {
        throw new RestError(response.status, messageOf(response.status, text));
    }
    return text ? JSON.parse(text) : {};
}

// A secret's answer is never read (splunkd echoes the password it was given).
async function send(method, path, form) {
    await request(method, path, { form });
}

export const seg = (name) => encodeURIComponent(name);

export async function listEntries(path) {
    const data = await request('GET', path, { query: { count: '0' } });
    return (data.entry || []).map((e) => ({ name: e.name, content: e.content || {} }));
}

export const confPath = (conf, stanza) => `configs/conf-${conf}${stanza ? `/${seg(stanza)}` : ''}`;

export async function getStanza(conf, stanza) {
    const entries = await listEntries(confPath(conf, stanza));
    return entries.length ? entries[0].content : {};
}

export const createStanza = (conf, name, fields) => request('POST', confPath(conf), { form: { name, ...fields } });
export const updateStanza = (conf, name, fields) => request('POST', confPath(conf, name), { form: fields });
export const deleteStanza = (conf, name) => request('DELETE', confPath(conf, name));

// storage/passwords entries are named realm:username: (colons inside escaped).
const escapeColons = (text) => text.replace(/:/g, '\\:');
const secretPath = (realm, username) => `storage/passwords/${seg(`${escapeColons(realm)}:${escapeColons(username)}:`)}`;

// Create or replace one secret; only ever POSTs (the page never GETs storage/passwords).
export async function putSecret(realm, username, password) {
    try {
        await send('POST', 'storage/passwords', { name: username, realm, password });
    } catch (e) {
        if (!(e instanceof RestError) || e.status !== 409) {
            throw e;
        }
        await send('POST', secretPath(realm, username), { password });
    }
}

export async function deleteSecret(realm, username) {
    try {
        await request('DELETE', secretPath(realm, username));
    } catch (e) {
        if (!(e instanceof RestError) || e.status !== 404) {
            throw e;
        }
    }
}
