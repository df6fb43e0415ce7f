// The add-on's Configuration page: tabs over splunkd's own REST endpoints (configs/conf-*,
// storage/passwords, data/inputs/*, saved/searches). Served by Splunk Web from
// appserver/templates/configuration.html; built by `make package` into appserver/static/build/.
import React, { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { SplunkThemeProvider } from '@splunk/themes';
import Heading from '@splunk/react-ui/Heading';
import Message from '@splunk/react-ui/Message';
import TabBar from '@splunk/react-ui/TabBar';
import AccountsTab from './AccountsTab';
import AlertsTab from './AlertsTab';
import InputsTab from './InputsTab';
import { LoggingTab, ProxyTab } from './SettingsTabs';
import { listEntries } from './api';
import { KINDS } from './kinds';

const TABS = [
    ['accounts', 'AWS accounts'],
    ['proxy', 'Proxy'],
    ['logging', 'Logging'],
    ['inputs', 'Inputs'],
    ['alerts', 'Alerts'],
];

function App() {
    const first = new URLSearchParams(window.location.search).get('tab');
    const [tab, setTab] = useState(TABS.some(([id]) => id === first) ? first : 'accounts');
    const [inputs, setInputs] = useState([]);
    const [accounts, setAccounts] = useState([]);
    const [error, setError] = useState('');

    const reloadInputs = () =>
        Promise.all(
            Object.keys(KINDS).map((kind) =>
                listEntries(`data/inputs/${kind}`).then((entries) => entries.map((e) => ({ ...e, kind })))
            )
        )
            .then((lists) => setInputs([].concat(...lists)))
            .catch((e) => setError(e.message));
    useEffect(() => {
        reloadInputs();
    }, []);

    return (
        <div style={{ padding: '16px 24px' }} data-page="configuration">
            <Heading level={1}>Configuration</Heading>
            {error && <Message type="error">{error}</Message>}
            <TabBar activeTabId={tab} onChange={(e, { selectedTabId }) => setTab(selectedTabId)}>
                {TABS.map(([id, label]) => (
                    <TabBar.Tab key={id} label={label} tabId={id} data-tab-id={id} />
                ))}
            </TabBar>
            <div style={{ marginTop: 16 }}>
                {/* Accounts stay mounted: the Inputs form offers their names. */}
                <div style={{ display: tab === 'accounts' ? 'block' : 'none' }}>
                    <AccountsTab inputs={inputs} onChange={setAccounts} />
                </div>
                {tab === 'proxy' && <ProxyTab />}
                {tab === 'logging' && <LoggingTab />}
                {tab === 'inputs' && <InputsTab inputs={inputs} accounts={accounts} reload={reloadInputs} />}
                {tab === 'alerts' && <AlertsTab />}
            </div>
        </div>
    );
}

// Below Splunk Web's own app bar: its layout API (served by Splunk Web, never a CDN) gives the
// container; without it (an older Splunk Web, the test stand-in) the page fills the window.
function render(container) {
    createRoot(container).render(
        <SplunkThemeProvider family="enterprise" colorScheme="light" density="comfortable">
            <App />
        </SplunkThemeProvider>
    );
}

function plain() {
    const container = document.createElement('div');
    document.body.appendChild(container);
    return container;
}

const script = document.createElement('script');
script.src = '../../static/build/api/layout.js';
script.onload = () => {
    const api = window.__splunk_layout__; // eslint-disable-line no-underscore-dangle
    render(api ? api.create().getContainerElement() : plain());
};
script.onerror = () => render(plain());
document.head.appendChild(script);
