// KEYWAY_MASTER_KEYS as PRODUCT.md spells it: comma-separated `version:key`, newest last, `v2:` and
// `2:` alike; the older variables still work; mixing them is refused with a message naming both.

import { describe, expect, test } from 'bun:test';
import { MasterKeyError } from '../../plugins/crypto-local/master-key.ts';
import { generateMasterKey, keyringFrom } from '../crypto/helpers.ts';

const ONE = generateMasterKey();
const TWO = generateMasterKey();
const THREE = generateMasterKey();

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof MasterKeyError) return error.message;
    throw error;
  }
  throw new Error('expected a MasterKeyError');
}

describe('KEYWAY_MASTER_KEYS', () => {
  test('`N:` and `vN:` entries, newest last: the last one is current, every one decrypts, each named by its source', () => {
    const keyring = keyringFrom({}, { KEYWAY_MASTER_KEYS: ` 1:${ONE}, v2:${TWO} ,3:${THREE}` });
    expect(keyring.current).toBe(3);
    expect([...keyring.keys.keys()]).toEqual([1, 2, 3]);
    expect(keyring.sources?.get(1)).toBe('KEYWAY_MASTER_KEYS');
  });

  test('versions need not be consecutive (a lost v2 is simply left out)', () => {
    const keyring = keyringFrom({}, { KEYWAY_MASTER_KEYS: `1:${ONE},3:${THREE}` });
    expect(keyring.current).toBe(3);
    expect([...keyring.keys.keys()]).toEqual([1, 3]);
  });

  test('out of order, unversioned, duplicated or version 0 entries are refused, never naming a key', () => {
    const messages = [
      refusal(() => keyringFrom({}, { KEYWAY_MASTER_KEYS: `2:${TWO},1:${ONE}` })),
      refusal(() => keyringFrom({}, { KEYWAY_MASTER_KEYS: `${ONE}` })),
      refusal(() => keyringFrom({}, { KEYWAY_MASTER_KEYS: `1:${ONE},1:${TWO}` })),
      refusal(() => keyringFrom({}, { KEYWAY_MASTER_KEYS: `0:${ONE}` })),
      refusal(() => keyringFrom({}, { KEYWAY_MASTER_KEYS: `1:${ONE},2:${ONE}` })),
    ];
    expect(messages[0]).toContain('lists v1 after v2; list the versions oldest first');
    expect(messages[1]).toContain('must name its version');
    expect(messages[2]).toContain('defines master key v1 more than once');
    expect(messages[3]).toContain('versions run from 1 to');
    expect(messages[4]).toContain('Master keys v1 and v2 are the same key');
    for (const message of messages) for (const key of [ONE, TWO]) expect(message).not.toContain(key);
  });

  test('mixed with the single-key variables it is refused, naming each', () => {
    for (const other of ['KEYWAY_MASTER_KEY', 'KEYWAY_MASTER_KEY_FILE', 'KEYWAY_PREVIOUS_MASTER_KEYS']) {
      const value = other === 'KEYWAY_PREVIOUS_MASTER_KEYS' ? `v1:${ONE}` : other === 'KEYWAY_MASTER_KEY' ? ONE : '/etc/keyway/master.key';
      const message = refusal(() => keyringFrom({}, { KEYWAY_MASTER_KEYS: `2:${TWO}`, [other]: value }));
      expect(message).toContain(`KEYWAY_MASTER_KEYS is set together with ${other}`);
      expect(message).not.toContain(ONE);
    }
  });

  test('the older forms keep working, `N:` accepted there too', () => {
    expect(keyringFrom({}, { KEYWAY_MASTER_KEY: ONE }).current).toBe(1);
    expect(keyringFrom({}, { KEYWAY_MASTER_KEY: `v1:${ONE},v2:${TWO}` }).current).toBe(2);
    expect([...keyringFrom({}, { KEYWAY_MASTER_KEY: `2:${TWO}`, KEYWAY_PREVIOUS_MASTER_KEYS: `1:${ONE}` }).keys.keys()].sort()).toEqual([1, 2]);
  });

  test('the masterKeys setting wins over the environment, and refuses its own single-key settings beside it', () => {
    const keyring = keyringFrom({ masterKeys: `4:${THREE}` }, { KEYWAY_MASTER_KEYS: `1:${ONE}` });
    expect(keyring.current).toBe(4);
    expect(keyring.sources?.get(4)).toBe('the masterKeys setting');
    expect(refusal(() => keyringFrom({ masterKeys: `4:${THREE}`, masterKey: ONE }))).toContain(
      'the masterKeys setting is set together with the masterKey setting',
    );
    // The file's single-key settings replace the environment as a whole, KEYWAY_MASTER_KEYS included.
    expect(keyringFrom({ masterKey: ONE }, { KEYWAY_MASTER_KEYS: `2:${TWO}` }).current).toBe(1);
  });
});
