// The micro benches' shared world (a fake store with the snapshot reads only, a keyring, providers and
// a team) is built as the benches build it, so a new store read the snapshots make stops `npm test`
// instead of the next bench run (session 15: configChangeVersion broke `bun bench/micro.ts` unseen).

import { expect, test } from 'bun:test';
import { buildWorld } from '../../bench/micro/fixtures/world.ts';

test('the micro benches build their world on the current core', async () => {
  const world = await buildWorld();
  expect(world).toBeDefined();
}, 60_000);
