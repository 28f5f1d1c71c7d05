/** One observed upstream call. */
export interface Sample {
  at: number;
  ok: boolean;
  latencyMs: number;
}

/** A window's calls: how many, how many failed, and the successful ones' latencies in ascending order. */
export interface WindowFigures {
  requests: number;
  failures: number;
  latencies: number[];
}

/** The nearest-rank percentile (0–100) of ascending `latencies`; undefined when there are none. */
export function percentileOf(latencies: readonly number[], percentile: number): number | undefined {
  if (latencies.length === 0) return undefined;
  return latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((percentile / 100) * latencies.length) - 1))];
}

/**
 * A sliding window over the most recent calls: at most `capacity` samples, none older than
 * `spanMs`. Counts are kept incrementally so recording is O(1); percentiles are computed on demand.
 */
export class SlidingWindow {
  private readonly samples: Array<Sample | undefined>;
  private start = 0;
  private length = 0;
  private failures = 0;

  constructor(
    private readonly capacity: number,
    private readonly spanMs: number,
  ) {
    this.samples = new Array<Sample | undefined>(capacity);
  }

  record(sample: Sample): void {
    this.expire(sample.at);
    if (this.length === this.capacity) this.dropOldest();
    this.samples[(this.start + this.length) % this.capacity] = sample;
    this.length++;
    if (!sample.ok) this.failures++;
  }

  count(now: number): number {
    this.expire(now);
    return this.length;
  }

  /** Successes as a percentage of the window; 100 when the window is empty. */
  successRate(now: number): number {
    this.expire(now);
    return this.length === 0 ? 100 : ((this.length - this.failures) / this.length) * 100;
  }

  /** Latency percentile (0–100) of the successful calls in the window. */
  latencyPercentile(now: number, percentile: number): number | undefined {
    return percentileOf(this.figures(now).latencies, percentile);
  }

  /** The window's counts and its successful calls' latencies, sorted: what another worker combines with its own. */
  figures(now: number): WindowFigures {
    this.expire(now);
    const latencies: number[] = [];
    for (let offset = 0; offset < this.length; offset++) {
      const sample = this.samples[(this.start + offset) % this.capacity];
      if (sample?.ok) latencies.push(sample.latencyMs);
    }
    latencies.sort((left, right) => left - right);
    return { requests: this.length, failures: this.failures, latencies };
  }

  clear(): void {
    this.samples.fill(undefined);
    this.start = 0;
    this.length = 0;
    this.failures = 0;
  }

  private expire(now: number): void {
    while (this.length > 0) {
      const oldest = this.samples[this.start];
      if (oldest === undefined || now - oldest.at <= this.spanMs) return;
      this.dropOldest();
    }
  }

  private dropOldest(): void {
    const oldest = this.samples[this.start];
    if (oldest !== undefined && !oldest.ok) this.failures--;
    this.samples[this.start] = undefined;
    this.start = (this.start + 1) % this.capacity;
    this.length--;
  }
}
