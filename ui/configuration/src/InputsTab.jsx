// Every input of the four kinds with its status; create, edit, clone, enable, disable, delete.
// splunkd runs the input's --validate-arguments on create and edit and answers 400 with its
// one-line message, shown inline in the form.
import React, { useState } from 'react';
import Button from '@splunk/react-ui/Button';
import ControlGroup from '@splunk/react-ui/ControlGroup';
import Message from '@splunk/react-ui/Message';
import Select from '@splunk/react-ui/Select';
import Table from '@splunk/react-ui/Table';
import { request, seg } from './api';
import { checkName, checkQueueUrl, checkRegions } from './checks';
import { Field, Notice, done, failed, hasErrors } from './Form';
import { COMMON_FIELDS, KINDS } from './kinds';

const NOWRAP = { whiteSpace: 'nowrap' }; // short values on one line; the Reads column wraps instead

const NO_ACCOUNT = '';

function fieldsOf(kind) {
    return [...KINDS[kind].fields, ...COMMON_FIELDS].map(([name]) => name);
}

export default function InputsTab({ inputs, accounts, reload }) {
    const [form, setForm] = useState(null);
    const [mode, setMode] = useState('create'); // create | edit | clone
    const [errors, setErrors] = useState({});
    const [notice, setNotice] = useState('');

    const open = (nextMode, input) => {
        setErrors({});
        setNotice('');
        setMode(nextMode);
        if (!input) {
            setForm({ kind: 'aws_cloudtrail_sqs', name: '', aws_account: NO_ACCOUNT, interval: '300', index: '' });
            return;
        }
        const values = { kind: input.kind, name: nextMode === 'clone' ? '' : input.name, aws_account: input.content.aws_account || NO_ACCOUNT };
        fieldsOf(input.kind).forEach((f) => {
            values[f] = input.content[f] === undefined || input.content[f] === null ? '' : String(input.content[f]);
        });
        setForm(values);
    };

    const save = async () => {
        const found = {};
        if (mode !== 'edit') {
            const taken = inputs.filter((i) => i.kind === form.kind).map((i) => i.name);
            const name = checkName('Input name', form.name, taken);
            if (name) found.name = name;
        }
        if (form.kind === 'aws_cloudtrail_sqs') {
            const queue = checkQueueUrl(form.queue_url || '');
            if (queue) found.queue_url = queue;
        }
        if (form.kind === 'aws_cloudtrail_s3' && !(form.bucket || '').trim()) found.bucket = 'Bucket is required';
        if (form.regions) {
            const regions = checkRegions(form.regions);
            if (regions) found.regions = regions;
        }
        setErrors(found);
        if (hasErrors(found)) return;
        const fields = { aws_account: form.aws_account };
        fieldsOf(form.kind).forEach((f) => {
            fields[f] = (form[f] || '').trim();
        });
        const base = `data/inputs/${form.kind}`;
        try {
            if (mode === 'edit') {
                await request('POST', `${base}/${seg(form.name)}`, { form: fields });
            } else {
                const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v));
                await request('POST', base, { form: { name: form.name.trim(), ...given } });
            }
        } catch (e) {
            setErrors({ form: e.message });
            return;
        }
        await reload(); // the table shows what was saved before the notice says so
        setNotice(done(`Input ${form.name.trim()} saved.`));
        setForm(null);
    };

    const act = async (input, action) => {
        const path = `data/inputs/${input.kind}/${seg(input.name)}`;
        try {
            if (action === 'delete') await request('DELETE', path);
            else await request('POST', `${path}/${action}`);
            await reload();
            setNotice(done(`Input ${input.name}: ${action}d.`));
        } catch (e) {
            setNotice(failed(e.message));
            reload();
        }
    };

    return (
        <div data-tab="inputs">
            <Notice notice={notice} />
            <Table stripeRows>
                <Table.Head>
                    <Table.HeadCell>Name</Table.HeadCell>
                    <Table.HeadCell>Kind</Table.HeadCell>
                    <Table.HeadCell>Account</Table.HeadCell>
                    <Table.HeadCell>Reads</Table.HeadCell>
                    <Table.HeadCell>Interval</Table.HeadCell>
                    <Table.HeadCell>Index</Table.HeadCell>
                    <Table.HeadCell>Status</Table.HeadCell>
                    <Table.HeadCell>Actions</Table.HeadCell>
                </Table.Head>
                <Table.Body>
                    {inputs.map((i) => {
                        const disabled = ['1', 'true', true].includes(i.content.disabled);
                        return (
                            <Table.Row key={`${i.kind}/${i.name}`} data-row={`${i.kind}/${i.name}`}>
                                <Table.Cell style={NOWRAP}>{i.name}</Table.Cell>
                                <Table.Cell>{KINDS[i.kind].label}</Table.Cell>
                                <Table.Cell>{i.content.aws_account || (i.content.credential ? `credential ${i.content.credential}` : 'default chain')}</Table.Cell>
                                <Table.Cell style={{ overflowWrap: 'anywhere' }}>{KINDS[i.kind].summary(i.content)}</Table.Cell>
                                <Table.Cell style={NOWRAP}>{i.content.interval || '300'}</Table.Cell>
                                <Table.Cell style={NOWRAP}>{i.content.index || 'main'}</Table.Cell>
                                <Table.Cell data-status={disabled ? 'disabled' : 'enabled'} style={NOWRAP}>{disabled ? 'Disabled' : 'Enabled'}</Table.Cell>
                                <Table.Cell style={NOWRAP}>
                                    <Button appearance="secondary" label="Edit" data-action="edit" onClick={() => open('edit', i)} />
                                    <Button appearance="secondary" label="Clone" data-action="clone" onClick={() => open('clone', i)} />
                                    <Button
                                        appearance="secondary"
                                        label={disabled ? 'Enable' : 'Disable'}
                                        data-action={disabled ? 'enable' : 'disable'}
                                        onClick={() => act(i, disabled ? 'enable' : 'disable')}
                                    />
                                    <Button appearance="destructive" label="Delete" data-action="delete" onClick={() => act(i, 'delete')} />
                                </Table.Cell>
                            </Table.Row>
                        );
                    })}
                </Table.Body>
            </Table>
            {!form && <Button appearance="primary" label="Add input" data-action="add-input" onClick={() => open('create', null)} />}
            {form && (
                <div data-form="input" style={{ maxWidth: 760, marginTop: 16 }}>
                    {errors.form && <Message type="error" data-message="form">{errors.form}</Message>}
                    <ControlGroup label="Kind" labelWidth={170}>
                        <Select value={form.kind} disabled={mode === 'edit'} data-field="kind" onChange={(e, { value }) => setForm({ ...form, kind: value })}>
                            {Object.keys(KINDS).map((k) => (
                                <Select.Option key={k} label={KINDS[k].label} value={k} />
                            ))}
                        </Select>
                    </ControlGroup>
                    <Field label="Input name" name="name" form={form} setForm={setForm} errors={errors} disabled={mode === 'edit'} />
                    <ControlGroup label="AWS account" labelWidth={170} help="An account of the AWS accounts tab, or the AWS default chain of this Splunk host.">
                        <Select value={form.aws_account} data-field="aws_account" onChange={(e, { value }) => setForm({ ...form, aws_account: value })}>
                            <Select.Option label="(AWS default chain)" value={NO_ACCOUNT} />
                            {accounts.map((a) => (
                                <Select.Option key={a} label={a} value={a} />
                            ))}
                        </Select>
                    </ControlGroup>
                    {[...KINDS[form.kind].fields, ...COMMON_FIELDS].map(([name, label, placeholder]) => (
                        <Field key={name} label={label} name={name} form={form} setForm={setForm} errors={errors} placeholder={placeholder} />
                    ))}
                    <Button appearance="primary" label="Save" data-action="save" onClick={save} />
                    <Button appearance="secondary" label="Cancel" data-action="cancel" onClick={() => setForm(null)} />
                </div>
            )}
        </div>
    );
}
