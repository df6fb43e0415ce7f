// AWS accounts: name, default chain or a static key (its secret only in storage/passwords),
// an optional role to assume, default regions. Inputs name an account with aws_account.
import React, { useEffect, useState } from 'react';
import Button from '@splunk/react-ui/Button';
import ControlGroup from '@splunk/react-ui/ControlGroup';
import Message from '@splunk/react-ui/Message';
import RadioBar from '@splunk/react-ui/RadioBar';
import Table from '@splunk/react-ui/Table';
import {
    ACCOUNTS_CONF,
    ACCOUNT_REALM,
    confPath,
    createStanza,
    deleteSecret,
    deleteStanza,
    listEntries,
    putSecret,
    updateStanza,
} from './api';
import { checkAccount } from './checks';
import { Field, Notice, done, failed, hasErrors } from './Form';

const EMPTY = { name: '', auth: 'default_chain', keyId: '', secret: '', roleArn: '', externalId: '', regions: '' };

export default function AccountsTab({ inputs, onChange }) {
    const [accounts, setAccounts] = useState([]);
    const [form, setForm] = useState(null); // null: no form open
    const [editing, setEditing] = useState(false);
    const [errors, setErrors] = useState({});
    const [notice, setNotice] = useState('');

    const load = () =>
        listEntries(confPath(ACCOUNTS_CONF))
            .then((entries) => {
                setAccounts(entries);
                onChange(entries.map((e) => e.name));
            })
            .catch((e) => setNotice(failed(e.message)));
    useEffect(() => {
        load();
    }, []);

    const open = (account) => {
        setErrors({});
        setNotice('');
        setEditing(!!account);
        if (!account) {
            setForm({ ...EMPTY });
            return;
        }
        const c = account.content;
        setForm({
            ...EMPTY,
            name: account.name,
            auth: c.auth || 'default_chain',
            hadKey: c.auth === 'static_key',
            roleArn: c.role_arn || '',
            externalId: c.external_id || '',
            regions: c.regions || '',
        });
    };

    const save = async () => {
        const found = checkAccount(form, accounts.map((a) => a.name), editing);
        setErrors(found);
        if (hasErrors(found)) return;
        const name = form.name.trim();
        const fields = {
            auth: form.auth,
            role_arn: form.roleArn.trim(),
            external_id: form.externalId.trim(),
            regions: form.regions.replace(/\s+/g, ''),
        };
        const newKey = form.auth === 'static_key' && form.keyId ? `${form.keyId.trim()}:${form.secret}` : '';
        try {
            if (editing) {
                // The secret first: a stanza never says static_key before its key is stored.
                if (newKey) await putSecret(ACCOUNT_REALM, name, newKey);
                await updateStanza(ACCOUNTS_CONF, name, fields);
                if (form.auth !== 'static_key' && form.hadKey) await deleteSecret(ACCOUNT_REALM, name);
            } else {
                await createStanza(ACCOUNTS_CONF, name, fields); // 409 on a duplicate: nothing written
                if (newKey) {
                    try {
                        await putSecret(ACCOUNT_REALM, name, newKey);
                    } catch (e) {
                        await deleteStanza(ACCOUNTS_CONF, name).catch(() => {});
                        throw e;
                    }
                }
            }
        } catch (e) {
            setErrors({ form: e.message });
            return;
        }
        await load(); // the table shows what was saved before the notice says so
        setForm(null);
        setNotice(done(`Account ${name} saved.`));
    };

    const remove = async (name) => {
        const users = inputs.filter((i) => i.content.aws_account === name).map((i) => i.name);
        if (users.length) {
            setNotice(failed(`Account ${name} is used by ${users.join(', ')}: change those inputs first.`));
            return;
        }
        try {
            await deleteStanza(ACCOUNTS_CONF, name);
            await deleteSecret(ACCOUNT_REALM, name);
            await load();
            setNotice(done(`Account ${name} deleted.`));
        } catch (e) {
            setNotice(failed(e.message));
            load();
        }
    };

    return (
        <div data-tab="accounts">
            <Notice notice={notice} />
            <Table stripeRows>
                <Table.Head>
                    <Table.HeadCell>Name</Table.HeadCell>
                    <Table.HeadCell>Credentials</Table.HeadCell>
                    <Table.HeadCell>Role ARN</Table.HeadCell>
                    <Table.HeadCell>Default regions</Table.HeadCell>
                    <Table.HeadCell>Used by</Table.HeadCell>
                    <Table.HeadCell>Actions</Table.HeadCell>
                </Table.Head>
                <Table.Body>
                    {accounts.map((a) => (
                        <Table.Row key={a.name} data-row={a.name}>
                            <Table.Cell>{a.name}</Table.Cell>
                            <Table.Cell>{a.content.auth === 'static_key' ? 'Static key (in storage/passwords)' : 'AWS default chain'}</Table.Cell>
                            <Table.Cell>{a.content.role_arn || '-'}</Table.Cell>
                            <Table.Cell>{a.content.regions || '-'}</Table.Cell>
                            <Table.Cell>{inputs.filter((i) => i.content.aws_account === a.name).length}</Table.Cell>
                            <Table.Cell>
                                <Button appearance="secondary" label="Edit" data-action="edit" onClick={() => open(a)} />
                                <Button appearance="destructive" label="Delete" data-action="delete" onClick={() => remove(a.name)} />
                            </Table.Cell>
                        </Table.Row>
                    ))}
                </Table.Body>
            </Table>
            {!form && <Button appearance="primary" label="Add account" data-action="add-account" onClick={() => open(null)} />}
            {form && (
                <div data-form="account" style={{ maxWidth: 720, marginTop: 16 }}>
                    {errors.form && <Message type="error" data-message="form">{errors.form}</Message>}
                    <Field label="Account name" name="name" form={form} setForm={setForm} errors={errors} disabled={editing} />
                    <ControlGroup label="Credentials" labelWidth={170}>
                        <RadioBar value={form.auth} onChange={(e, { value }) => setForm({ ...form, auth: value })}>
                            <RadioBar.Option value="default_chain" label="AWS default chain" data-auth="default_chain" />
                            <RadioBar.Option value="static_key" label="Static access key" data-auth="static_key" />
                        </RadioBar>
                    </ControlGroup>
                    {form.auth === 'static_key' && (
                        <>
                            <Field
                                label="Access key ID"
                                name="keyId"
                                form={form}
                                setForm={setForm}
                                errors={errors}
                                help={form.hadKey ? 'A key is stored. Leave both fields empty to keep it.' : ''}
                            />
                            <Field
                                label="Secret access key"
                                name="secret"
                                type="password"
                                form={form}
                                setForm={setForm}
                                errors={errors}
                                help="Stored encrypted in storage/passwords; never shown again."
                            />
                        </>
                    )}
                    <Field label="Role ARN" name="roleArn" form={form} setForm={setForm} errors={errors} placeholder="arn:aws:iam::123456789012:role/NAME (optional)" />
                    <Field label="External ID" name="externalId" form={form} setForm={setForm} errors={errors} placeholder="optional" />
                    <Field label="Default regions" name="regions" form={form} setForm={setForm} errors={errors} placeholder="us-east-1,eu-west-1 (optional)" />
                    <Button appearance="primary" label="Save" data-action="save" onClick={save} />
                    <Button appearance="secondary" label="Cancel" data-action="cancel" onClick={() => setForm(null)} />
                </div>
            )}
        </div>
    );
}
