// A gateway in front of the OpenAI and Anthropic simulators, with a recording webhook receiver for
// alerts and a clock the test can move forward (for the daily job), plus the calls the tests share.

import { expect } from 'bun:test';
import { startAnthropicSimulator, type AnthropicSimulatorHandle } from '../simulators/anthropic.ts';
import { OPENAI_SIM_ADMIN_KEY, startOpenAISimulator, type OpenAISimulatorHandle, type OpenAISimulatorOptions } from '../simulators/openai.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import webhookRecorder from '../plugins/webhook-recorder/index.ts';

export const OPENAI_KEY = 'sk-proj-ReconTestOpenAIKey0000000000000001abcd';
export const OPENAI_SECOND_KEY = 'sk-proj-ReconTestOpenAIKey0000000000000002efgh';
export const ANTHROPIC_KEY = 'sk-ant-api03-ReconTestAnthropicKey000000000001wxyz';

export interface ReceivedAlert {
  type: string;
  accountId: string;
  message: string;
  details: Record<string, unknown>;
}

export interface Harness {
  gateway: TestGateway;
  openai: OpenAISimulatorHandle;
  anthropic: AnthropicSimulatorHandle;
  alerts: ReceivedAlert[];
  webhookUrl: string;
  /** Milliseconds added to the gateway's clock (the usage rows keep real time). */
  shiftClock(milliseconds: number): void;
  /** Every response body read through `read`, for the canary scan. */
  answers: string[];
  read(response: Response): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** `openai`: more of the OpenAI simulator's options (the dated names it answers aliases with); `env`: more of the gateway's. */
export async function startHarness(options: { openai?: OpenAISimulatorOptions; env?: Record<string, string> } = {}): Promise<Harness> {
  const openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY, OPENAI_SECOND_KEY], ...options.openai });
  const anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  const alerts: ReceivedAlert[] = [];
  const receiver = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      alerts.push((await request.json()) as ReceivedAlert);
      return new Response('ok');
    },
  });
  let offset = 0;
  const gateway = await startTestGateway({
    env: {
      KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
      KEYWAY_ANTHROPIC_BASE_URL: anthropic.url,
      // Notify targets are held to the outbound address rules, which refuse loopback: the operator's
      // allow list admits exactly the recording receiver, as it would an internal alert sink.
      KEYWAY_UPSTREAM_ALLOW: `127.0.0.1:${receiver.port}`,
      ...options.env,
    },
    extraPlugins: [{ definition: webhookRecorder, source: 'test' }],
    clock: { now: () => Date.now() + offset },
    probes: false,
  });
  const answers: string[] = [];
  return {
    gateway,
    openai,
    anthropic,
    alerts,
    webhookUrl: `http://127.0.0.1:${receiver.port}/alerts`,
    shiftClock(milliseconds) {
      offset = milliseconds;
    },
    answers,
    async read(response) {
      const text = await response.text();
      answers.push(text);
      return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    },
    async stop() {
      await gateway.stop();
      await receiver.stop(true);
      await openai.stop();
      await anthropic.stop();
    },
  };
}

/**
 * A harness whose OpenAI usage is reconciled against the simulator's own reports (its admin key
 * stored) and whose drift alerts go to the recording receiver from $1 and 5% up: the daily job's
 * suites look for the alerts a drift raises.
 */
export async function startAlertingHarness(): Promise<Harness> {
  const harness = await startHarness();
  const key = await harness.read(await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: OPENAI_SIM_ADMIN_KEY }));
  expect(key.status).toBe(200);
  const settings = await harness.read(
    await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { drift_alert_percent: 5, drift_alert_min_usd: 1, notify: [harness.webhookUrl] }),
  );
  expect(settings.status).toBe(200);
  return harness;
}

export async function chat(
  harness: Harness,
  model: string,
  text: string,
  options: { stream?: boolean; key?: string; extra?: Record<string, unknown> } = {},
): Promise<void> {
  const response = await call(
    harness.gateway,
    'POST',
    '/v1/chat/completions',
    {
      model,
      messages: [{ role: 'user', content: text }],
      ...(options.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
      ...options.extra,
    },
    { key: options.key },
  );
  const body = await response.text();
  if (response.status !== 200) throw new Error(`chat with ${model} answered ${response.status}: ${body}`);
}

export async function messages(harness: Harness, model: string, text: string, stream: boolean, system?: unknown): Promise<void> {
  const request = { model, max_tokens: 200, stream, ...(system === undefined ? {} : { system }), messages: [{ role: 'user', content: text }] };
  const response = await call(harness.gateway, 'POST', '/v1/messages', request);
  const answer = await response.text();
  if (response.status !== 200) throw new Error(`messages with ${model} answered ${response.status}: ${answer}`);
}

export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/**
 * The daily reconciliation job run twice at 03:00 UTC tomorrow, after the reports settled (a fixed
 * shift of 27 h would land past 02:00 the day after tomorrow when a test runs after 23:00 UTC), the
 * clock put back after; then a wait for the drift alerts, which the alerts plugin records at once and
 * delivers in the background.
 */
export async function runDailyJobTomorrow(harness: Harness): Promise<void> {
  const job = harness.gateway.runtime.plugins.jobs.find((entry) => entry.value.name === 'daily-reconciliation')?.value;
  if (job === undefined) throw new Error('no daily-reconciliation job');
  const tomorrowThreeAm = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1, 3);
  harness.shiftClock(tomorrowThreeAm - Date.now());
  try {
    await job.run();
    await job.run();
  } finally {
    harness.shiftClock(0);
  }
  for (let wait = 0; wait < 100 && harness.alerts.length === 0; wait++) await Bun.sleep(20);
  await Bun.sleep(50);
}
