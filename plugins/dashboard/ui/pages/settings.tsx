import { useState } from 'preact/hooks';
import { api, isAccountAdmin } from '../api.ts';
import { Async, Badge, ErrorBox, Field, Section, Table, useAction, useApi } from '../components.tsx';
import { time } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import type { PageProps } from './types.ts';

interface Compliance {
  met: boolean;
  byok_compliance: Record<string, unknown>;
  report: Record<string, { value: unknown; met: boolean; action?: string; note?: string }>;
}

interface WebhookSecret {
  secret: string;
  header: string;
  algorithm: string;
  created_at: string;
}

function Routing({ settings, onSaved }: { settings: Record<string, unknown>; onSaved(): void }) {
  const [text, setText] = useState(JSON.stringify(settings.routing ?? {}, null, 2));
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error('The routing block is not valid JSON.');
      }
      await api('/v1/settings/routing', 'PUT', body);
      onSaved();
    });
  };
  return (
    <form onSubmit={submit} aria-label="Routing">
      <Field label="Default routing (the body of PUT /v1/settings/routing)">
        <textarea class="code" rows={10} value={text} onInput={(event) => setText(event.currentTarget.value)} spellcheck={false} />
      </Field>
      <button type="submit" disabled={action.busy}>
        Save routing
      </button>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

function WebhookSecretControl() {
  const action = useAction();
  const [created, setCreated] = useState<WebhookSecret | undefined>(undefined);
  const create = () =>
    void action.run(async () => {
      if (!confirm('Create a new webhook signing secret? The current one stops being valid.')) return;
      setCreated(await api<WebhookSecret>('/v1/settings/webhook-secret', 'POST'));
    });
  return (
    <>
      <p class="muted">Keyway signs outgoing webhooks with the account's secret. It is shown once, when created.</p>
      <button type="button" onClick={create} disabled={action.busy}>
        Create or replace the webhook secret
      </button>
      {created ? (
        <div class="issued" role="alert">
          Copy it now: <code class="secret">{created.secret}</code> ({created.algorithm}, header {created.header}, {time(created.created_at)})
        </div>
      ) : null}
      {action.error ? <ErrorBox error={action.error} /> : null}
    </>
  );
}

export function SettingsPage({ session }: PageProps) {
  const admin = isAccountAdmin(session);
  const settings = useApi<{ settings: Record<string, unknown> }>(admin ? '/v1/settings' : undefined);
  const compliance = useApi<Compliance>(admin ? '/v1/settings/compliance' : undefined);
  if (!admin) return <AdminOnly session={session} what="Account settings" />;
  return (
    <>
      <Section title="Routing">
        <Async state={settings}>{(data) => <Routing settings={data.settings} onSaved={settings.reload} />}</Async>
      </Section>
      <Section title="Compliance">
        <Async state={compliance}>
          {(data) => (
            <>
              <p>
                Overall: <Badge tone={data.met ? 'good' : 'bad'}>{data.met ? 'met' : 'not met'}</Badge>
              </p>
              <Table
                caption="Compliance settings and whether the running gateway meets them"
                empty="No compliance setting."
                rows={Object.entries(data.report)}
                columns={[
                  { label: 'Setting', render: ([name]) => name.replaceAll('_', ' ') },
                  { label: 'Value', render: ([, entry]) => String(entry.value ?? '–') },
                  { label: 'Met', render: ([, entry]) => <Badge tone={entry.met ? 'good' : 'bad'}>{entry.met ? 'met' : 'not met'}</Badge> },
                  { label: 'Note', render: ([, entry]) => entry.action ?? entry.note ?? '–' },
                ]}
              />
            </>
          )}
        </Async>
      </Section>
      <Section title="Webhook secret">
        <WebhookSecretControl />
      </Section>
    </>
  );
}
