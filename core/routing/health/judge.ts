// The one rule that finds a health problem in a window of calls, shared by the circuit (each worker's
// own calls, on the request path) and the health answer (every worker's calls combined), so the two
// word a problem alike and the answer never shows a verdict its own figures do not bear out.

import { latencyOf, successRateOf } from './figures.ts';
import type { WindowFigures } from './window.ts';

/** The thresholds of a health policy (monitor.ts) this rule reads: named here, so the monitor's module need not be imported back. */
export interface JudgedThresholds {
  min_samples: number;
  health_threshold: number;
  latency_threshold: number;
}

const round = (value: number): number => Math.round(value * 100) / 100;

export interface WindowReading {
  samples: number;
  /** Successes as a percentage of the samples. */
  successRate: number;
  /** The successful calls' median latency; a function because sorting the window costs (read only when the rate passes). */
  medianLatency(): number | undefined;
}

/** The problem the window shows under the policy, in words; undefined when none, or when it holds too few calls to judge. */
export function healthProblem(policy: JudgedThresholds, window: WindowReading): string | undefined {
  if (window.samples < policy.min_samples) return undefined;
  if (window.successRate < policy.health_threshold)
    return `success rate ${round(window.successRate)}% is below ${policy.health_threshold}% over the last ${window.samples} calls`;
  const median = window.medianLatency();
  if (median !== undefined && median > policy.latency_threshold) return `median latency ${round(median)} ms is above ${policy.latency_threshold} ms`;
  return undefined;
}

/** A window's figures (several workers' combined, figures.ts) as the rule reads them. */
export function windowReading(window: WindowFigures): WindowReading {
  return { samples: window.requests, successRate: successRateOf(window), medianLatency: () => latencyOf(window, 50) };
}
