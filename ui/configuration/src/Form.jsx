// Small form helpers shared by the tabs: a labelled text field with its inline message, and the
// tab's one-line notice of what a write did.
import React from 'react';
import ControlGroup from '@splunk/react-ui/ControlGroup';
import Message from '@splunk/react-ui/Message';
import Text from '@splunk/react-ui/Text';

export function Field({ label, name, form, setForm, errors, help, type, placeholder, disabled }) {
    const error = errors[name] || '';
    return (
        <ControlGroup label={label} help={help} error={error || undefined} labelWidth={170}>
            <Text
                name={name}
                data-field={name}
                type={type || 'text'}
                value={form[name] || ''}
                placeholder={placeholder}
                disabled={disabled}
                error={!!error}
                autoComplete={type === 'password' ? 'new-password' : 'off'}
                onChange={(e, { value }) => setForm({ ...form, [name]: value })}
            />
        </ControlGroup>
    );
}

export const hasErrors = (errors) => Object.keys(errors).some((k) => errors[k]);

// A notice says what a write did (info) or why it did not happen (error: styled and announced as
// an alert, never as info). Tabs keep one in state, '' for none.
export const done = (text) => ({ type: 'info', text });
export const failed = (text) => ({ type: 'error', text });

export function Notice({ notice }) {
    return notice ? <Message type={notice.type}>{notice.text}</Message> : null;
}
