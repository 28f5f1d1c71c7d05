// Batched OTLP/HTTP export, off the request path: the account hook appends a record to a bounded
// queue (dropped and counted when full); a background job, or a full batch, sends it. A failed POST
// is counted and its spans dropped: tracing never holds memory or requests hostage to a collector.

import type { Logger } from '../../core/logger.ts';
import type { TraceExportConfig } from './config.ts';
import { exportRequest, spanCount, type ModelLabel, type RequestRecord, type TextCheck } from './spans.ts';

export interface ExporterStats {
  exportedSpans: number;
  droppedQueueFull: number;
  droppedExportFailed: number;
  failedExports: number;
}

export class TraceExporter {
  private queue: RequestRecord[] = [];
  private exporting: Promise<void> | undefined;
  private kicked = false;
  readonly stats: ExporterStats = { exportedSpans: 0, droppedQueueFull: 0, droppedExportFailed: 0, failedExports: 0 };

  constructor(
    private readonly config: TraceExportConfig,
    private readonly fetcher: typeof fetch,
    private readonly logger: Logger,
    private readonly modelLabel: ModelLabel,
    private readonly version: string,
    private readonly checkText: TextCheck = (text) => text,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  /** The hot path's part: O(1), never awaits. */
  offer(record: RequestRecord): void {
    if (this.queue.length >= this.config.maxQueueSize) {
      this.stats.droppedQueueFull += spanCount(record);
      return;
    }
    this.queue.push(record);
    if (this.queue.length >= this.config.maxBatchSize && !this.kicked && this.exporting === undefined) {
      this.kicked = true;
      const timer = setTimeout(() => {
        this.kicked = false;
        void this.flush();
      }, 0);
      timer.unref?.();
    }
  }

  /** Sends everything queued, batch by batch; concurrent callers share one run. */
  flush(): Promise<void> {
    this.exporting ??= this.drain().finally(() => {
      this.exporting = undefined;
    });
    return this.exporting;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.config.maxBatchSize);
      await this.send(batch);
    }
  }

  private async send(batch: RequestRecord[]): Promise<void> {
    let spans = 0;
    for (const record of batch) spans += spanCount(record);
    try {
      const response = await this.fetcher(this.config.url, {
        method: 'POST',
        headers: { ...this.config.headers, 'content-type': 'application/json' },
        body: exportRequest(batch, this.config.serviceName, this.version, this.modelLabel, this.checkText),
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`the collector answered HTTP ${response.status}`);
      this.stats.exportedSpans += spans;
    } catch (error) {
      this.stats.failedExports += 1;
      this.stats.droppedExportFailed += spans;
      // Once per failure streak would be kinder to logs; the count is in /metrics either way. Never the URL's query or a header.
      if (this.stats.failedExports === 1 || this.stats.failedExports % 100 === 0)
        this.logger.warn(
          { spans, failedExports: this.stats.failedExports, error: error instanceof Error ? error.name : 'Error' },
          'OTLP trace export failed; spans dropped',
        );
    }
  }
}
