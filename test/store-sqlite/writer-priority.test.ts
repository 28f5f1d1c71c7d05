// The usage writer's priority (plugins/store-sqlite/writer-priority.ts): idle until a batch's oldest row
// has waited the lag, then its ordinary share until it has caught up; and who may use it at all.

import { describe, expect, test } from 'bun:test';
import { hasNiceCapability, mayLeaveIdlePolicy, niceLimit, SCHED_BATCH, SCHED_IDLE } from '../../core/process/thread-scheduling.ts';
import { loadConfig } from '../../core/config.ts';
import { usageWriteLagMs, writerPolicy } from '../../plugins/store-sqlite/usage-writer-client.ts';
import { type WriterPolicy, WriterPriority } from '../../plugins/store-sqlite/writer-priority.ts';

function priorityOnAClock(lagMs: number) {
  let now = 1_000_000;
  const calls: WriterPolicy[] = [];
  const priority = new WriterPriority({
    lagMs,
    now: () => now,
    checkEveryMs: 5,
    setPolicy: async (policy) => {
      calls.push(policy);
      return true;
    },
  });
  return {
    priority,
    calls,
    advance: (ms: number) => {
      now += ms;
    },
    get now() {
      return now;
    },
  };
}

describe('the usage writer priority', () => {
  test('stays idle while each batch is written within the lag, whatever the rate', () => {
    const clock = priorityOnAClock(10_000);
    for (let id = 0; id < 100; id++) {
      clock.priority.sent(id, clock.now - 900);
      clock.advance(50);
      clock.priority.done(id);
    }
    expect(clock.calls).toEqual([]);
    expect(clock.priority.isRaised).toBe(false);
  });

  test('is raised as soon as a batch is sent whose oldest row has waited the lag, and lowered once nothing is outstanding', () => {
    const clock = priorityOnAClock(10_000);
    clock.priority.sent(1, clock.now - 10_000);
    expect(clock.priority.isRaised).toBe(true);
    expect(clock.calls).toEqual([SCHED_BATCH]);
    clock.priority.sent(2, clock.now);
    clock.priority.done(1);
    // Batch 2 is still outstanding: the writer keeps its share until it has caught up.
    expect(clock.calls).toEqual([SCHED_BATCH]);
    clock.priority.done(2);
    expect(clock.calls).toEqual([SCHED_BATCH, SCHED_IDLE]);
    expect(clock.priority.isRaised).toBe(false);
  });

  test('is raised while a batch waits on the starved thread, by the timer, not only when the next one is sent', async () => {
    const clock = priorityOnAClock(1000);
    clock.priority.sent(1, clock.now - 200);
    expect(clock.calls).toEqual([]);
    clock.advance(900);
    await Bun.sleep(30);
    expect(clock.calls).toEqual([SCHED_BATCH]);
    clock.priority.done(1);
    expect(clock.calls).toEqual([SCHED_BATCH, SCHED_IDLE]);
    clock.priority.close();
  });

  test('counts a batch without a booking time from when it was sent, and never from the future', () => {
    const clock = priorityOnAClock(500);
    clock.priority.sent(1, undefined);
    clock.priority.sent(2, clock.now + 60_000);
    clock.priority.sent(3, Number.NaN);
    expect(clock.calls).toEqual([]);
    clock.advance(500);
    clock.priority.sent(4, clock.now);
    expect(clock.calls).toEqual([SCHED_BATCH]);
  });
});

describe('who may run the writer idle', () => {
  test('CAP_SYS_NICE in the effective set, read from /proc status text', () => {
    expect(hasNiceCapability('Name:\tbun\nCapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasNiceCapability('CapEff:\t0000000000800000\n')).toBe(true);
    // Docker's default set: no CAP_SYS_NICE.
    expect(hasNiceCapability('CapEff:\t00000000a80425fb\n')).toBe(false);
    expect(hasNiceCapability('CapEff:\t0000000000000000\n')).toBe(false);
    expect(hasNiceCapability('')).toBe(false);
  });

  test('RLIMIT_NICE from /proc limits text', () => {
    const limits = (soft: string) =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax nice priority         ${soft}                    20\n`;
    expect(niceLimit(limits('0'))).toBe(0);
    expect(niceLimit(limits('20'))).toBe(20);
    expect(niceLimit(limits('unlimited'))).toBe(Number.POSITIVE_INFINITY);
    expect(niceLimit('')).toBe(0);
    expect(mayLeaveIdlePolicy('CapEff:\t00000000a80425fb\n', limits('0'))).toBe(false);
    expect(mayLeaveIdlePolicy('CapEff:\t00000000a80425fb\n', limits('20'))).toBe(true);
    expect(mayLeaveIdlePolicy('CapEff:\t0000000000800000\n', limits('0'))).toBe(true);
  });

  test('a process that could not raise the writer again keeps it under SCHED_BATCH; so do lag 0 and KEYWAY_THREAD_SCHEDULING=default', () => {
    expect(writerPolicy({ batchSchedule: true, idleLagMs: 10_000 }, () => true)).toBe('idle');
    expect(writerPolicy({ batchSchedule: true, idleLagMs: 10_000 }, () => false)).toBe('batch');
    expect(writerPolicy({ batchSchedule: true, idleLagMs: 0 }, () => true)).toBe('batch');
    expect(writerPolicy({ batchSchedule: false, idleLagMs: 10_000 }, () => true)).toBe('default');
  });

  test('KEYWAY_USAGE_WRITE_LAG_MS: 10 s by default, a whole number of milliseconds, checked at start', () => {
    expect(usageWriteLagMs({})).toBe(10_000);
    expect(usageWriteLagMs({ KEYWAY_USAGE_WRITE_LAG_MS: '2500' })).toBe(2500);
    expect(usageWriteLagMs({ KEYWAY_USAGE_WRITE_LAG_MS: '0' })).toBe(0);
    expect(loadConfig({ KEYWAY_USAGE_WRITE_LAG_MS: '2500' }).usageWriteLagMs).toBe(2500);
    expect(() => loadConfig({ KEYWAY_USAGE_WRITE_LAG_MS: 'soon' })).toThrow(/KEYWAY_USAGE_WRITE_LAG_MS/);
    expect(() => loadConfig({ KEYWAY_USAGE_WRITE_LAG_MS: '-1' })).toThrow(/KEYWAY_USAGE_WRITE_LAG_MS/);
  });
});
