// Rotation under load (issue 11's target): steady concurrent traffic through one gateway while an
// immediate and then a gradual rotation run with a short grace period. Counts failed requests and
// the requests the upstream saw with the old key after old_key_expires_at (per second, at most).
//
//   bun bench/rotation-under-load.ts            (CONCURRENCY=32 GRACE_SECONDS=6 PHASE_SECONDS=10)
//
// Gateway, OpenAI simulator (accepting both keys and recording which one each request carried) and
// load generator share one process, as the tests do; the rotation job runs every 200 ms on the real
// clock. Target: 0 failed requests, and at most 1 request per second served by a retired key.

import { addProviderKeys, call, startTestGateway } from '../test/helpers/gateway.ts';
import { startOpenAISimulator } from '../test/simulators/openai.ts';

const CONCURRENCY = Number(process.env.CONCURRENCY ?? '32');
const GRACE_SECONDS = Number(process.env.GRACE_SECONDS ?? '6');
const PHASE_SECONDS = Number(process.env.PHASE_SECONDS ?? '10');
const KEYS = [
  'sk-proj-BenchRotationKeyA000000000000000000001',
  'sk-proj-BenchRotationKeyB000000000000000000002',
  'sk-proj-BenchRotationKeyC000000000000000000003',
];

const openai = startOpenAISimulator({ apiKeys: KEYS });
const gateway = await startTestGateway({
  probes: false,
  logLevel: 'warn',
  env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_ROTATION_INTERVAL_MS: '200' },
});
const adminKey = gateway.defaultAdminKey;
await addProviderKeys(gateway, [{ name: 'openai', api_key: KEYS[0] }], adminKey);

let stop = false;
let sent = 0;
const failures = new Map<number, number>();
const latencies: number[] = [];
async function worker(): Promise<void> {
  while (!stop) {
    const started = performance.now();
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 },
      { key: adminKey },
    );
    await response.arrayBuffer();
    sent++;
    latencies.push(performance.now() - started);
    if (response.status !== 200) failures.set(response.status, (failures.get(response.status) ?? 0) + 1);
  }
}

interface PhaseResult {
  strategy: string;
  expiresAt: number;
  oldKey: string;
}

async function rotatePhase(strategy: 'immediate' | 'gradual', oldKey: string, newKey: string): Promise<PhaseResult> {
  await Bun.sleep(1000);
  const response = await call(
    gateway,
    'POST',
    '/v1/providers/keys/rotate',
    { provider: 'openai', new_api_key: newKey, rotation_strategy: strategy, grace_period_minutes: GRACE_SECONDS / 60, test_before_switch: true },
    { key: adminKey },
  );
  const answer = (await response.json()) as { old_key_expires_at: string };
  if (response.status !== 201) throw new Error(`rotation failed: ${response.status} ${JSON.stringify(answer)}`);
  await Bun.sleep(PHASE_SECONDS * 1000);
  return { strategy, expiresAt: Date.parse(answer.old_key_expires_at), oldKey };
}

const workers = Array.from({ length: CONCURRENCY }, () => worker());
const startedAt = Date.now();
const phases = [await rotatePhase('immediate', KEYS[0] as string, KEYS[1] as string), await rotatePhase('gradual', KEYS[1] as string, KEYS[2] as string)];
stop = true;
await Promise.all(workers);
const elapsedSeconds = (Date.now() - startedAt) / 1000;

const requests = openai.inferenceRequests();
const report = phases.map((phase) => {
  const late = requests.filter((request) => request.headers.authorization === `Bearer ${phase.oldKey}` && request.receivedAt > phase.expiresAt);
  const perSecond = new Map<number, number>();
  for (const request of late) perSecond.set(Math.floor(request.receivedAt / 1000), (perSecond.get(Math.floor(request.receivedAt / 1000)) ?? 0) + 1);
  const servedByOld = requests.filter((request) => request.headers.authorization === `Bearer ${phase.oldKey}`).length;
  return {
    strategy: phase.strategy,
    served_by_old_key_total: servedByOld,
    served_by_old_key_after_expiry: late.length,
    max_per_second_after_expiry: Math.max(0, ...perSecond.values()),
  };
});
latencies.sort((a, b) => a - b);
console.log(
  JSON.stringify(
    {
      concurrency: CONCURRENCY,
      grace_seconds: GRACE_SECONDS,
      seconds: Math.round(elapsedSeconds * 10) / 10,
      requests: sent,
      requests_per_second: Math.round(sent / elapsedSeconds),
      failed: [...failures.values()].reduce((sum, count) => sum + count, 0),
      failures_by_status: Object.fromEntries(failures),
      latency_ms: { p50: latencies[Math.floor(latencies.length * 0.5)]?.toFixed(2), p99: latencies[Math.floor(latencies.length * 0.99)]?.toFixed(2) },
      phases: report,
    },
    null,
    2,
  ),
);
await gateway.stop();
await openai.stop();
