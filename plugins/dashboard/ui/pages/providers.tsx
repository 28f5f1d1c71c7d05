import { api, isAccountAdmin } from '../api.ts';
import { Async, Badge, ErrorBox, Field, Section, Table, useAction, useApi, useForm } from '../components.tsx';
import { milliseconds, percent, time } from '../format.ts';
import type { PageProps } from './types.ts';

interface Health {
  providers: Array<{ name: string; status: string; success_rate: number; requests: number; latency_ms: number | null; issues: string[] }>;
}

interface ProviderKey {
  name: string;
  key_id: string;
  status: string;
  masked_key: string;
  fingerprint: string;
  weight?: number;
  available_models?: string[];
  created_at: string;
  rotation?: unknown;
}

const tone = (status: string) => (status === 'healthy' || status === 'active' ? 'good' : status === 'degraded' || status === 'recovering' ? 'warn' : 'bad');

function Bar({ value, max, label }: { value: number; max: number; label: string }) {
  return (
    <span class="bar" title={label}>
      <span class="bar-fill" style={{ width: `${max > 0 ? Math.min(100, (value / max) * 100) : 0}%` }} />
      <span class="bar-text">{label}</span>
    </span>
  );
}

function HealthTable({ health }: { health: Health }) {
  const slowest = Math.max(1, ...health.providers.map((entry) => entry.latency_ms ?? 0));
  return (
    <Table
      caption="Provider health, over the monitor's recent window"
      empty="No provider key yet: add one below."
      rows={health.providers}
      columns={[
        { label: 'Provider', render: (row) => row.name },
        { label: 'Status', render: (row) => <Badge tone={tone(row.status)}>{row.status}</Badge> },
        { label: 'Success', render: (row) => <Bar value={row.success_rate} max={100} label={percent(row.success_rate)} /> },
        { label: 'Latency', render: (row) => <Bar value={row.latency_ms ?? 0} max={slowest} label={milliseconds(row.latency_ms)} /> },
        { label: 'Requests', render: (row) => row.requests, numeric: true },
        { label: 'Issues', render: (row) => row.issues.join('; ') || '–' },
      ]}
    />
  );
}

function AddKey({ onAdded }: { onAdded(): void }) {
  const [values, bind, reset] = useForm({ name: 'openai', api_key: '', environment: '' });
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const entry: Record<string, string> = { name: values.name.trim(), api_key: values.api_key.trim() };
      if (values.environment.trim() !== '') entry.environment = values.environment.trim();
      await api('/v1/providers/keys', 'POST', { providers: [entry] });
      reset({ name: values.name, api_key: '', environment: '' });
      onAdded();
    });
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Add a provider key">
      <Field label="Provider">
        <input value={values.name} onInput={bind('name')} required list="provider-names" />
      </Field>
      <Field label="API key">
        <input type="password" value={values.api_key} onInput={bind('api_key')} autocomplete="off" required />
      </Field>
      <Field label="Environment (optional)">
        <input value={values.environment} onInput={bind('environment')} placeholder="production" />
      </Field>
      <datalist id="provider-names">
        {['openai', 'anthropic', 'google', 'cohere', 'perplexity', 'mistral', 'groq', 'together', 'deepseek'].map((name) => (
          <option value={name} />
        ))}
      </datalist>
      <button type="submit" class="primary" disabled={action.busy}>
        Add key
      </button>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

/**
 * A provider with several keys needs the one to replace named (`key_id`): the API refuses to guess, so
 * the form offers that provider's keys to choose from. With one key there is nothing to choose.
 */
function RotateKey({ keys, onRotated }: { keys: ProviderKey[]; onRotated(): void }) {
  const [values, bind, reset] = useForm({ provider: 'openai', key_id: '', new_api_key: '', rotation_strategy: 'immediate' });
  const action = useAction();
  const candidates = keys.filter((key) => key.name === values.provider.trim());
  const chosen = candidates.length > 1 ? candidates.find((key) => key.key_id === values.key_id) : undefined;
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const body: Record<string, string> = { provider: values.provider.trim(), new_api_key: values.new_api_key, rotation_strategy: values.rotation_strategy };
      if (chosen !== undefined) body.key_id = chosen.key_id;
      await api('/v1/providers/keys/rotate', 'POST', body);
      reset({ ...values, key_id: '', new_api_key: '' });
      onRotated();
    });
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Rotate a provider key">
      <Field label="Provider to rotate">
        <input value={values.provider} onInput={bind('provider')} required />
      </Field>
      {candidates.length > 1 ? (
        <Field label="Key to rotate">
          <select value={chosen?.key_id ?? ''} onChange={bind('key_id')} required>
            <option value="">Choose one of {candidates.length} keys</option>
            {candidates.map((key) => (
              <option value={key.key_id}>{`${key.masked_key} · ${key.status} · ${key.key_id}`}</option>
            ))}
          </select>
        </Field>
      ) : null}
      <Field label="New API key">
        <input type="password" value={values.new_api_key} onInput={bind('new_api_key')} autocomplete="off" required />
      </Field>
      <Field label="Strategy">
        <select value={values.rotation_strategy} onChange={bind('rotation_strategy')}>
          <option value="immediate">immediate</option>
          <option value="gradual">gradual</option>
        </select>
      </Field>
      <button type="submit" disabled={action.busy}>
        Rotate
      </button>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

function Keys({ onChange }: { onChange(): void }) {
  const keys = useApi<{ providers: ProviderKey[] }>('/v1/providers');
  const action = useAction();
  const remove = (key: ProviderKey) => {
    if (!confirm(`Delete the ${key.name} key ${key.masked_key}? Requests stop using it at once.`)) return;
    void action.run(async () => {
      await api(`/v1/providers/keys/${encodeURIComponent(key.key_id)}`, 'DELETE');
      keys.reload();
      onChange();
    });
  };
  const refresh = () => {
    keys.reload();
    onChange();
  };
  return (
    <>
      <Section title="Keys">
        {action.error ? <ErrorBox error={action.error} /> : null}
        <Async state={keys}>
          {(data) => (
            <Table
              caption="Provider keys of this account (masked)"
              empty="No provider key yet."
              rows={data.providers}
              columns={[
                { label: 'Provider', render: (row) => row.name },
                { label: 'Key', render: (row) => <code>{row.masked_key}</code> },
                { label: 'Status', render: (row) => <Badge tone={tone(row.status)}>{row.status}</Badge> },
                { label: 'Models', render: (row) => row.available_models?.length ?? '–', numeric: true },
                { label: 'Added', render: (row) => time(row.created_at) },
                {
                  label: 'Actions',
                  render: (row) => (
                    <button type="button" class="danger" onClick={() => remove(row)} aria-label={`Delete ${row.name} key ${row.masked_key}`}>
                      Delete
                    </button>
                  ),
                },
              ]}
            />
          )}
        </Async>
      </Section>
      <Section title="Add a provider key">
        <AddKey onAdded={refresh} />
      </Section>
      <Section title="Rotate a provider key">
        <RotateKey keys={keys.data?.providers ?? []} onRotated={refresh} />
      </Section>
    </>
  );
}

export function ProvidersPage({ session }: PageProps) {
  const health = useApi<Health>('/v1/providers/health');
  return (
    <>
      <Section title="Health">
        <Async state={health}>{(data) => <HealthTable health={data} />}</Async>
      </Section>
      {isAccountAdmin(session) ? <Keys onChange={health.reload} /> : null}
    </>
  );
}
