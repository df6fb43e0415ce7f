// The app's scheduled searches: switch each on or off; the alerts' e-mail recipient.
import React, { useEffect, useState } from 'react';
import Button from '@splunk/react-ui/Button';
import Switch from '@splunk/react-ui/Switch';
import Table from '@splunk/react-ui/Table';
import Text from '@splunk/react-ui/Text';
import { APP, listEntries, request, seg } from './api';
import { Notice, done, failed } from './Form';

const isTrue = (v) => ['1', 'true', true].includes(v);

export default function AlertsTab() {
    const [searches, setSearches] = useState([]);
    const [emails, setEmails] = useState({});
    const [notice, setNotice] = useState('');
    const load = () =>
        listEntries('saved/searches')
            .then((entries) => {
                const ours = entries.filter((e) => (e.content['eai:acl'] || { app: APP }).app === APP && isTrue(e.content.is_scheduled));
                setSearches(ours);
                setEmails(Object.fromEntries(ours.map((e) => [e.name, e.content['action.email.to'] || ''])));
            })
            .catch((e) => setNotice(failed(e.message)));
    useEffect(() => {
        load();
    }, []);

    const update = async (name, fields, said) => {
        try {
            await request('POST', `saved/searches/${seg(name)}`, { form: fields });
            setNotice(done(said));
        } catch (e) {
            setNotice(failed(e.message));
        }
        load();
    };

    return (
        <div data-tab="alerts">
            <Notice notice={notice} />
            <p>Shipped searches run only where they are switched on: leave them off on a forwarder.</p>
            <Table stripeRows>
                <Table.Head>
                    <Table.HeadCell>Search</Table.HeadCell>
                    <Table.HeadCell>Schedule</Table.HeadCell>
                    <Table.HeadCell>On</Table.HeadCell>
                    <Table.HeadCell>E-mail to</Table.HeadCell>
                </Table.Head>
                <Table.Body>
                    {searches.map((s) => {
                        const on = !isTrue(s.content.disabled);
                        const alert = (s.content.alert_type || 'always') !== 'always'; // an alert condition
                        return (
                            <Table.Row key={s.name} data-row={s.name}>
                                <Table.Cell>{s.name}</Table.Cell>
                                <Table.Cell>{s.content.cron_schedule}</Table.Cell>
                                <Table.Cell>
                                    <Switch
                                        appearance="toggle"
                                        selected={on}
                                        data-action="toggle"
                                        onClick={() => update(s.name, { disabled: on ? '1' : '0' }, `${s.name} switched ${on ? 'off' : 'on'}.`)}
                                    />
                                </Table.Cell>
                                <Table.Cell>
                                    {alert && (
                                        <>
                                            <Text inline value={emails[s.name] || ''} placeholder="soc@example.com" onChange={(e, { value }) => setEmails({ ...emails, [s.name]: value })} />
                                            <Button
                                                appearance="secondary"
                                                label="Save"
                                                data-action="save-email"
                                                onClick={() =>
                                                    update(
                                                        s.name,
                                                        { 'action.email': emails[s.name] ? '1' : '0', 'action.email.to': emails[s.name] || '' },
                                                        `${s.name}: e-mail ${emails[s.name] ? `to ${emails[s.name]}` : 'off'}.`
                                                    )
                                                }
                                            />
                                        </>
                                    )}
                                </Table.Cell>
                            </Table.Row>
                        );
                    })}
                </Table.Body>
            </Table>
        </div>
    );
}
