// Other plugins add their own counters to the scrape (the trace exporter's exported and dropped
// spans) without a dependency on this one: sources are kept per gateway, keyed by the services
// object every plugin of that gateway shares.

import type { MetricsSource } from './exposition.ts';

const sources = new WeakMap<object, MetricsSource[]>();

export function addMetricsSource(services: object, source: MetricsSource): void {
  const list = sources.get(services);
  if (list === undefined) sources.set(services, [source]);
  else list.push(source);
}

export function metricsSourcesOf(services: object): readonly MetricsSource[] {
  return sources.get(services) ?? [];
}

export type { MetricsSource, MetricsWriter } from './exposition.ts';
