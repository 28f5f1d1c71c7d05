// bun bench/kill-under-load.ts — drives 32 concurrent clients at Keyway, SIGKILLs it mid-load, restarts on the same data directory,
// and checks that every request answered 200 before the kill has exactly one usage row.
import { Database } from 'bun:sqlite';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const BUN = process.execPath;
const ROOT = join(import.meta.dir, '..');
const dir = mkdtempSync(join(tmpdir(), 'kill-'));
const env = {
  ...process.env,
  KEYWAY_HOST: '127.0.0.1',
  KEYWAY_PORT: '18090',
  KEYWAY_DATA_DIR: dir,
  KEYWAY_DATABASE_URL: `file:${dir}/k.db`,
  KEYWAY_ADMIN_KEY: 'kw_op_benchadminkey0123456789abcdef',
  KEYWAY_LOG_LEVEL: 'warn',
  KEYWAY_OPENAI_BASE_URL: 'http://127.0.0.1:18091/v1',
};
const stub = Bun.spawn([BUN, join(ROOT, 'bench', 'upstream-stub.ts')], { env: { ...process.env, STUB_PORT: '18091' }, stdout: 'ignore', stderr: 'ignore' });
async function start() {
  const child = Bun.spawn([BUN, join(ROOT, 'plugins', 'main.ts')], { env, stdout: 'ignore', stderr: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch('http://127.0.0.1:18090/ready')).ok) break;
    } catch {}
    await Bun.sleep(100);
  }
  return child;
}
let keyway = await start();
await fetch('http://127.0.0.1:18090/v1/providers/keys', {
  method: 'POST',
  headers: { authorization: 'Bearer kw_op_benchadminkey0123456789abcdef', 'content-type': 'application/json' },
  body: JSON.stringify({ providers: [{ name: 'openai', api_key: 'sk-bench-upstream-key' }] }),
});
const answered: string[] = [];
let stop = false;
let seq = 0;
const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
const workers = Array.from({ length: 32 }, async () => {
  while (!stop) {
    const id = `kill_${++seq}`;
    try {
      const r = await fetch('http://127.0.0.1:18090/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: 'Bearer kw_op_benchadminkey0123456789abcdef', 'content-type': 'application/json', 'x-request-id': id },
        body,
      });
      await r.text();
      if (r.status === 200) answered.push(id);
    } catch {
      /* the kill */
    }
  }
});
await Bun.sleep(3000);
keyway.kill('SIGKILL');
stop = true;
await Promise.all(workers);
await keyway.exited;
const killedAt = answered.length;
keyway = await start();
await Bun.sleep(500);
keyway.kill('SIGTERM');
await keyway.exited;
stub.kill();
const db = new Database(`${dir}/k.db`);
const rows = db.query("SELECT request_id, COUNT(*) c FROM usage_records WHERE request_id LIKE 'kill_%' GROUP BY request_id").all() as Array<{
  request_id: string;
  c: number;
}>;
const byId = new Map(rows.map((row) => [row.request_id, row.c]));
const missing = answered.filter((id) => !byId.has(id)).length;
const duplicated = rows.filter((row) => row.c > 1).length;
console.log(
  JSON.stringify({
    answeredBeforeKill: killedAt,
    rateApprox: Math.round(killedAt / 3),
    rowsForKillRequests: rows.length,
    missing,
    duplicated,
    extraRowsForUnansweredRequests: rows.length - (killedAt - missing),
  }),
);
