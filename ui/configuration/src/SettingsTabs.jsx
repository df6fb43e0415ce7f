// Proxy (password only in storage/passwords) and Logging (a level per input kind).
import React, { useEffect, useState } from 'react';
import Button from '@splunk/react-ui/Button';
import ControlGroup from '@splunk/react-ui/ControlGroup';
import Message from '@splunk/react-ui/Message';
import Select from '@splunk/react-ui/Select';
import Switch from '@splunk/react-ui/Switch';
import { PROXY_REALM, SETTINGS_CONF, deleteSecret, getStanza, putSecret, updateStanza } from './api';
import { checkProxy } from './checks';
import { Field, Notice, done, failed, hasErrors } from './Form';
import { KINDS } from './kinds';

export function ProxyTab() {
    const [form, setForm] = useState(null);
    const [errors, setErrors] = useState({});
    const [notice, setNotice] = useState('');
    useEffect(() => {
        getStanza(SETTINGS_CONF, 'proxy')
            .then((c) =>
                setForm({
                    host: c.host || '',
                    port: c.port || '',
                    username: c.username || '',
                    password: '',
                    savedUser: c.username || '',
                    enabled: !['1', 'true', true].includes(c.disabled),
                })
            )
            .catch((e) => setNotice(failed(e.message)));
    }, []);
    if (!form) return <div data-tab="proxy"><Notice notice={notice} /></div>;

    const save = async () => {
        const found = checkProxy(form);
        setErrors(found);
        setNotice(''); // an earlier "saved" does not stand beside this save's error
        if (hasErrors(found)) return;
        const username = form.username.trim();
        try {
            if (form.password) await putSecret(PROXY_REALM, username, form.password);
            await updateStanza(SETTINGS_CONF, 'proxy', {
                host: form.host.trim(),
                port: form.port.trim(),
                username,
                disabled: form.enabled ? '0' : '1',
            });
            if (form.savedUser && form.savedUser !== username) await deleteSecret(PROXY_REALM, form.savedUser);
        } catch (e) {
            setErrors({ form: e.message });
            return;
        }
        setForm({ ...form, password: '', savedUser: username });
        setNotice(done('Proxy saved. Inputs use it from their next run.'));
    };

    return (
        <div data-tab="proxy" style={{ maxWidth: 720 }}>
            <Notice notice={notice} />
            {errors.form && <Message type="error" data-message="form">{errors.form}</Message>}
            <ControlGroup label="Use the proxy" labelWidth={170}>
                <Switch appearance="toggle" selected={form.enabled} onClick={() => setForm({ ...form, enabled: !form.enabled })} />
            </ControlGroup>
            <Field label="Host" name="host" form={form} setForm={setForm} errors={errors} placeholder="proxy.example.com" />
            <Field label="Port" name="port" form={form} setForm={setForm} errors={errors} placeholder="3128" />
            <Field label="User name" name="username" form={form} setForm={setForm} errors={errors} placeholder="optional" />
            <Field
                label="Password"
                name="password"
                type="password"
                form={form}
                setForm={setForm}
                errors={errors}
                help="Stored encrypted in storage/passwords. Leave empty to keep the stored one."
            />
            <p>Every AWS call of every input goes through this proxy (HTTPS through CONNECT), unless the input sets its own proxy.</p>
            <Button appearance="primary" label="Save" data-action="save" onClick={save} />
        </div>
    );
}

const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'];

export function LoggingTab() {
    const [levels, setLevels] = useState(null);
    const [notice, setNotice] = useState('');
    useEffect(() => {
        getStanza(SETTINGS_CONF, 'logging')
            .then(setLevels)
            .catch((e) => setNotice(failed(e.message)));
    }, []);
    const save = async () => {
        const fields = {};
        Object.keys(KINDS).forEach((kind) => {
            fields[kind] = levels[kind] || 'INFO';
        });
        try {
            await updateStanza(SETTINGS_CONF, 'logging', fields);
            setNotice(done('Log levels saved. Inputs use them from their next run.'));
        } catch (e) {
            setNotice(failed(e.message));
        }
    };
    return (
        <div data-tab="logging" style={{ maxWidth: 720 }}>
            <Notice notice={notice} />
            {levels &&
                Object.keys(KINDS).map((kind) => (
                    <ControlGroup key={kind} label={KINDS[kind].label} labelWidth={240} help={`$SPLUNK_HOME/var/log/splunk/ta_aws_iam_error_spike_${kind}.log`}>
                        <Select value={levels[kind] || 'INFO'} data-kind={kind} onChange={(e, { value }) => setLevels({ ...levels, [kind]: value })}>
                            {LEVELS.map((l) => (
                                <Select.Option key={l} label={l} value={l} />
                            ))}
                        </Select>
                    </ControlGroup>
                ))}
            <Button appearance="primary" label="Save" data-action="save" onClick={save} />
        </div>
    );
}
