// Reading the audit log over HTTP the way a client does: every page, following next_cursor.

import { expect } from 'bun:test';
import { call, type TestGateway } from '../helpers/gateway.ts';

export interface AuditEvent {
  id: string;
  type: string;
  occurred_at: string;
  account_id: string;
  request_id: string | null;
  actor: { key_id: string | null; role: string | null; team_id: string | null };
  ip: string | null;
  action: string;
  target: Record<string, unknown>;
  status: number | null;
  before?: unknown;
  after?: unknown;
  [detail: string]: unknown;
}

export interface AuditPage {
  events: AuditEvent[];
  has_more: boolean;
  next_cursor: string | null;
}

/** Every event a query answers, page by page; `texts` collects each raw answer for canary scans. */
export async function readAllEvents(gateway: TestGateway, query: string, key?: string, texts?: string[]): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const separator = query === '' ? '' : '&';
    const response = await call(
      gateway,
      'GET',
      `/v1/audit-logs?${query}${cursor === null ? '' : `${separator}cursor=${encodeURIComponent(cursor)}`}`,
      undefined,
      { key },
    );
    const text = await response.text();
    texts?.push(text);
    expect(response.status).toBe(200);
    const body = JSON.parse(text) as AuditPage;
    events.push(...body.events);
    if (!body.has_more) return events;
    expect(body.next_cursor).toBeString();
    cursor = body.next_cursor;
  }
  throw new Error('the audit log did not end');
}
