import { do_not_optimize, group } from 'mitata';
import { authenticate } from '../../core/credentials/authenticate.ts';
import { hashGatewayKey } from '../../core/credentials/secrets.ts';
import { GATEWAY_KEY_COUNT } from './fixtures/repository-rows.ts';
import type { BenchWorld } from './fixtures/world.ts';
import { benchmark } from './registry.ts';

/** The core's auth check on every request: SHA-256 of the bearer key, then one map lookup. */
export function registerAuthBenches(world: BenchWorld): void {
  const key = world.benchBearerKey;
  const headers = new Headers({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
  const principals = world.snapshots.current.principalsByHash;
  if (principals.size < GATEWAY_KEY_COUNT || principals.get(hashGatewayKey(key)) === undefined) throw new Error('the auth fixture did not load its 10k keys');

  group('auth', () => {
    benchmark('auth: hashGatewayKey (sha256 hex)', () => do_not_optimize(hashGatewayKey(key)));
    benchmark(`auth: hash + snapshot lookup (${GATEWAY_KEY_COUNT / 1000}k keys)`, () =>
      do_not_optimize(world.snapshots.current.principalsByHash.get(hashGatewayKey(key))),
    );
    benchmark('auth: authenticate(headers) end to end', () => do_not_optimize(authenticate(world.snapshots, headers)));
  });
}
