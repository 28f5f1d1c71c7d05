// False alarms and detection of the anomaly rule (plugins/alerts/anomaly.ts) on synthetic months:
// hourly traffic of many accounts with a daily curve, quieter weekends, day-to-day drift and Poisson
// noise, judged hour by hour against the same hour of the previous 14 days exactly as the alert job
// judges it. With nothing injected every firing is a false alarm; then anomalies are injected at
// random hours (traffic ×3, cost per request ×3, errors +15 points) and the share caught is counted.
//
//   bun bench/anomaly-false-alarms.ts [accounts=300] [seed=7]
//
// Figures are in docs/alerts.md ("Anomaly detection").

import { BASELINE_DAYS, judgeHour, median, SENSITIVITY_K, type HourSample } from '../plugins/alerts/anomaly.ts';
import type { AnomalyMetric, Sensitivity } from '../plugins/alerts/schema.ts';
import { seededRandom } from '../test/helpers/seeded-random.ts';

const MONTH_DAYS = 30;
const DAYS = BASELINE_DAYS + MONTH_DAYS;
const METRICS: AnomalyMetric[] = ['spend', 'requests', 'error_rate'];
const SENSITIVITIES: Sensitivity[] = ['low', 'medium', 'high'];

function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function poisson(random: () => number, mean: number): number {
  if (mean > 50) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(random)));
  const limit = Math.exp(-mean);
  let count = 0;
  for (let product = random(); product > limit; product *= random()) count++;
  return count;
}

function binomial(random: () => number, trials: number, p: number): number {
  if (trials > 200) return Math.min(trials, Math.max(0, Math.round(trials * p + Math.sqrt(trials * p * (1 - p)) * normal(random))));
  let count = 0;
  for (let trial = 0; trial < trials; trial++) if (random() < p) count++;
  return count;
}

/** Share of the day's peak traffic at each hour (UTC): night trough, office-hours plateau. */
function dailyShape(hour: number): number {
  return 0.08 + 0.92 * Math.exp(-(((hour - 14) / 4.5) ** 2));
}

interface Account {
  peak: number;
  costPerRequest: number;
  errorRate: number;
}

function accountOf(random: () => number): Account {
  const sizes = [6, 40, 300, 2000];
  return {
    peak: (sizes[Math.floor(random() * sizes.length)] as number) * (0.7 + 0.6 * random()),
    costPerRequest: 0.002 + 0.03 * random(),
    errorRate: 0.002 + 0.02 * random(),
  };
}

type Injection = 'traffic' | 'cost' | 'errors';

/** One account's DAYS × 24 hours; `injected` maps an hour index to what was injected there. */
function trafficOf(random: () => number, account: Account, injected: Map<number, Injection>): HourSample[] {
  const hours: HourSample[] = [];
  let drift = 1;
  for (let day = 0; day < DAYS; day++) {
    drift = Math.min(2, Math.max(0.5, drift * Math.exp(0.05 * normal(random))));
    const weekend = day % 7 >= 5 ? 0.45 : 1;
    const dayNoise = Math.exp(0.1 * normal(random));
    for (let hour = 0; hour < 24; hour++) {
      const index = day * 24 + hour;
      const injection = injected.get(index);
      const mean = account.peak * dailyShape(hour) * weekend * drift * dayNoise * Math.exp(0.1 * normal(random)) * (injection === 'traffic' ? 3 : 1);
      const requests = poisson(random, mean);
      const perRequest = account.costPerRequest * Math.exp(0.15 * normal(random)) * (injection === 'cost' ? 3 : 1);
      const errors = binomial(random, requests, Math.min(1, account.errorRate * Math.exp(0.3 * normal(random)) + (injection === 'errors' ? 0.15 : 0)));
      hours.push({ requests, errors, spendUsd: requests * perRequest });
    }
  }
  return hours;
}

function baselineOf(hours: readonly HourSample[], index: number): HourSample[] {
  const baseline: HourSample[] = [];
  for (let back = 1; back <= BASELINE_DAYS; back++) {
    const sample = hours[index - back * 24];
    if (sample !== undefined) baseline.push(sample);
  }
  return baseline;
}

interface Tally {
  judged: number;
  falseAlarms: Record<AnomalyMetric, number>;
  falseHours: number;
  injected: Record<Injection, number>;
  caught: Record<Injection, number>;
  /** The same, only for weekday hours whose baseline had at least 50 requests. */
  busyInjected: Record<Injection, number>;
  busyCaught: Record<Injection, number>;
}

function run(accounts: number, seed: number, sensitivity: Sensitivity, inject: boolean): Tally {
  const random = seededRandom(seed);
  const tally: Tally = {
    judged: 0,
    falseAlarms: { spend: 0, requests: 0, error_rate: 0 },
    falseHours: 0,
    injected: { traffic: 0, cost: 0, errors: 0 },
    caught: { traffic: 0, cost: 0, errors: 0 },
    busyInjected: { traffic: 0, cost: 0, errors: 0 },
    busyCaught: { traffic: 0, cost: 0, errors: 0 },
  };
  const kinds: Injection[] = ['traffic', 'cost', 'errors'];
  for (let number = 0; number < accounts; number++) {
    const account = accountOf(random);
    const injected = new Map<number, Injection>();
    if (inject) {
      for (let count = 0; count < 6; count++) {
        const index = (BASELINE_DAYS + Math.floor(random() * MONTH_DAYS)) * 24 + Math.floor(random() * 24);
        injected.set(index, kinds[count % kinds.length] as Injection);
      }
    }
    const hours = trafficOf(random, account, injected);
    for (let index = BASELINE_DAYS * 24; index < hours.length; index++) {
      const baseline = baselineOf(hours, index);
      const verdicts = judgeHour(hours[index] as HourSample, baseline, sensitivity, METRICS);
      const injection = injected.get(index);
      if (injection !== undefined) {
        const expected: AnomalyMetric[] = injection === 'errors' ? ['error_rate'] : ['spend', 'requests'];
        const caught = verdicts.some((entry) => expected.includes(entry.metric)) ? 1 : 0;
        tally.injected[injection]++;
        tally.caught[injection] += caught;
        const busy = Math.floor(index / 24) % 7 < 5 && median(baseline.map((sample) => sample.requests)) >= 50;
        if (busy) {
          tally.busyInjected[injection]++;
          tally.busyCaught[injection] += caught;
        }
        continue;
      }
      tally.judged++;
      if (verdicts.length > 0) tally.falseHours++;
      for (const entry of verdicts) tally.falseAlarms[entry.metric]++;
    }
  }
  return tally;
}

const accounts = Number(process.argv[2] ?? 300);
const seed = Number(process.argv[3] ?? 7);
const percent = (part: number, whole: number): string => (whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)} %`);
console.log(`${accounts} synthetic accounts × ${MONTH_DAYS} judged days (after ${BASELINE_DAYS} days of baseline), seed ${seed}\n`);
console.log(
  '| sensitivity | k | hours judged | false-alarm hours | per account-month | spend / requests / error rate | caught: traffic ×3 | cost ×3 | errors +15 pts | busy weekday hours: traffic / cost / errors |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const sensitivity of SENSITIVITIES) {
  const quiet = run(accounts, seed, sensitivity, false);
  const noisy = run(accounts, seed + 1, sensitivity, true);
  console.log(
    `| ${sensitivity} | ${SENSITIVITY_K[sensitivity]} | ${quiet.judged} | ${quiet.falseHours} (${percent(quiet.falseHours, quiet.judged)}) | ${(quiet.falseHours / accounts).toFixed(2)} | ` +
      `${quiet.falseAlarms.spend} / ${quiet.falseAlarms.requests} / ${quiet.falseAlarms.error_rate} | ` +
      `${percent(noisy.caught.traffic, noisy.injected.traffic)} | ${percent(noisy.caught.cost, noisy.injected.cost)} | ${percent(noisy.caught.errors, noisy.injected.errors)} | ` +
      `${percent(noisy.busyCaught.traffic, noisy.busyInjected.traffic)} / ${percent(noisy.busyCaught.cost, noisy.busyInjected.cost)} / ${percent(noisy.busyCaught.errors, noisy.busyInjected.errors)} |`,
  );
}
