// Browser entry (bundled by esbuild in render.js): validates the definition with Splunk's
// schema and validator, then renders it with Splunk's DashboardCore, every data source replaced
// by a ds.test source holding sample results (window.__SAMPLES__).
import React from 'react';
import { createRoot } from 'react-dom/client';
import { DashboardCore } from '@splunk/dashboard-core';
import { DashboardContextProvider } from '@splunk/dashboard-context';
import EnterprisePreset from '@splunk/dashboard-presets/EnterprisePreset';
import EnterpriseViewOnlyPreset from '@splunk/dashboard-presets/EnterpriseViewOnlyPreset';
import { createSchemaBasedOnPresets } from '@splunk/dashboard-definition/DashboardSchema';
import { DashboardValidator, checkVisualizationsInStructure, checkInputsInStructure } from '@splunk/dashboard-validation';
import SplunkThemeProvider from '@splunk/themes/SplunkThemeProvider';

const definition = window.__DEFINITION__;
const samples = window.__SAMPLES__ || {};

const validator = new DashboardValidator();
const schemaError = validator.setSchema(createSchemaBasedOnPresets(EnterprisePreset));
const problems = [];
if (schemaError) problems.push({ schema: String(schemaError) });
(validator.validate(definition) || []).forEach((e) => problems.push(e));
[checkVisualizationsInStructure, checkInputsInStructure].forEach((check) => {
    const r = check(definition);
    if (r && (!Array.isArray(r) || r.length)) problems.push({ [check.name]: r });
});
window.__VALIDATION__ = problems;

const rendered = JSON.parse(JSON.stringify(definition));
Object.keys(rendered.dataSources || {}).forEach((id) => {
    const sample = samples[id] || { fields: [], columns: [] };
    rendered.dataSources[id] = {
        type: 'ds.test',
        name: rendered.dataSources[id].name,
        options: { data: { fields: sample.fields.map((name) => ({ name })), columns: sample.columns } },
    };
});
delete rendered.defaults;
// The entity the sample run selected, as a click on its row of "Flagged spikes" would set it.
const selected = samples.__tokens__ || {};
Object.values(rendered.inputs || {}).forEach((input) => {
    if (selected[input.options.token] !== undefined) input.options.defaultValue = selected[input.options.token];
});
window.__MISSING_SAMPLES__ = Object.keys(definition.dataSources || {}).filter((id) => !samples[id]);

createRoot(document.getElementById('root')).render(
    <SplunkThemeProvider family="enterprise" colorScheme="light" density="compact">
        <DashboardContextProvider preset={EnterpriseViewOnlyPreset} initialDefinition={rendered}>
            <DashboardCore width="100%" height="auto" />
        </DashboardContextProvider>
    </SplunkThemeProvider>
);
window.__RENDERED__ = true;
