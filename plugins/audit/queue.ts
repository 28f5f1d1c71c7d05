// Audit events reach the database in batches: the account hook (key access) only pushes in memory;
// a job (and every read of the log) writes what is queued. An admin event is written before its
// management call answers (`record`): the log must hold it for a read on any worker or instance. A
// failed write keeps the batch for the next try; past MAX_QUEUED the oldest events are dropped and
// counted in the log, never blocking a request.

import type { Logger } from '../../core/logger.ts';
import type { Services } from '../../core/spec/services.ts';
import type { AuditType } from './schema.ts';

export interface PendingEvent {
  accountId: string;
  type: AuditType;
  occurredAt: string;
  requestId: string | null;
  actorKeyId: string | null;
  actorRole: string | null;
  actorTeamId: string | null;
  clientIp: string | null;
  action: string;
  /** An object, or its JSON when the event was serialised as it was queued. */
  target: Record<string, unknown> | string;
  status: number | null;
  /** Built and serialised when the batch is written, off the request path; or its JSON already. */
  details: (() => Record<string, unknown>) | string;
}

const COLUMNS = [
  'id',
  'account_id',
  'type',
  'occurred_at',
  'request_id',
  'actor_key_id',
  'actor_role',
  'actor_team_id',
  'client_ip',
  'action',
  'target',
  'status',
  'details',
] as const;
/** Rows per INSERT: 13 parameters each stays far below SQLite's variable limit. */
const ROWS_PER_STATEMENT = 200;
const MAX_QUEUED = 100_000;

export class AuditQueue {
  private pending: PendingEvent[] = [];
  private writing: Promise<void> | undefined;
  private dropped = 0;
  private sequence = 0;
  /** Random per process, drawn once: keeps two instances' ids apart without a random draw per event. */
  private readonly instanceTail: string;

  constructor(
    private readonly services: Services,
    private readonly logger: Logger,
  ) {
    this.instanceTail = services.credentials.randomId('x').slice(2, 10);
  }

  get size(): number {
    return this.pending.length;
  }

  push(event: PendingEvent): void {
    if (this.pending.length >= MAX_QUEUED) {
      this.pending.shift();
      this.dropped++;
    }
    this.pending.push(event);
  }

  /**
   * Queues the event and writes the queue now, with it. For management actions, which are rare: the
   * request path only pushes. A write that fails keeps the event queued for the job's next try.
   */
  async record(event: PendingEvent): Promise<void> {
    this.push(event);
    await this.flush();
  }

  /** Writes everything queued so far; concurrent callers wait for the same write, then for theirs. */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
    if (this.pending.length === 0) return this.reportDropped();
    const batch = this.pending;
    this.pending = [];
    this.writing = this.write(batch).finally(() => {
      this.writing = undefined;
    });
    await this.writing;
  }

  private async write(batch: PendingEvent[]): Promise<void> {
    let written = 0;
    try {
      const append = this.services.store.appendRows?.bind(this.services.store);
      if (append !== undefined) {
        // One prepared statement in one transaction, on the store's writer thread where it has one.
        // One clock reading per statement: ids still grow with time, and with the queue's order within it.
        const time = this.idTime();
        await append(
          'audit_events',
          COLUMNS,
          batch.map((event) => this.parameters(event, time)),
        );
        written = batch.length;
      }
      for (; written < batch.length; written += ROWS_PER_STATEMENT) {
        // The embedded store writes on this thread: between statements, let waiting requests run.
        if (written > 0) await new Promise((resolve) => setImmediate(resolve));
        const rows = batch.slice(written, written + ROWS_PER_STATEMENT);
        const placeholders = rows.map(() => `(${COLUMNS.map(() => '?').join(', ')})`).join(', ');
        const time = this.idTime();
        await this.services.store.execute(
          `INSERT INTO audit_events (${COLUMNS.join(', ')}) VALUES ${placeholders}`,
          rows.flatMap((event) => this.parameters(event, time)),
        );
      }
    } catch (error) {
      // What was not written goes back in front, in order, for the next flush.
      this.pending = [...batch.slice(written), ...this.pending].slice(-MAX_QUEUED);
      this.logger.error({ queued: this.pending.length, error: error instanceof Error ? error.message : String(error) }, 'writing audit events failed');
      throw error;
    }
    this.reportDropped();
  }

  private parameters(event: PendingEvent, time: string): unknown[] {
    return [
      this.nextId(time),
      event.accountId,
      event.type,
      event.occurredAt,
      event.requestId,
      event.actorKeyId,
      event.actorRole,
      event.actorTeamId,
      event.clientIp,
      event.action,
      typeof event.target === 'string' ? event.target : JSON.stringify(event.target),
      event.status,
      typeof event.details === 'string' ? event.details : JSON.stringify(event.details()),
    ];
  }

  /** The time part of the ids of one statement's rows: the clock read once, not once per row. */
  private idTime(): string {
    return Math.max(0, Math.floor(this.services.clock.now())).toString(36).padStart(9, '0');
  }

  /**
   * Ids grow with time and, within one millisecond, with the order events were queued: they break
   * ties of `occurred_at` in the log's order, so an event written after a page was read never lands
   * inside the pages still to come. The random tail (one per process) keeps instances from colliding.
   */
  private nextId(time: string): string {
    this.sequence = (this.sequence + 1) % 36 ** 6;
    return `aud_${time}${this.sequence.toString(36).padStart(6, '0')}${this.instanceTail}`;
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    this.logger.error({ dropped: this.dropped }, 'audit queue was full: the oldest audit events were dropped');
    this.dropped = 0;
  }
}
