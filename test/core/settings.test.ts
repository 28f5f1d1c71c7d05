// The one reader of settings (core/spec/settings.ts) that the core and every plugin use: the same
// spellings of on and off everywhere, numbers and addresses refused rather than replaced by their
// default, operator secrets held to a minimum strength; and where a default start keeps its database.

import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../core/config.ts';
import { integerSetting, numberSetting, onOffSetting, SettingError, secretSetting, urlSetting, weakSecretReason } from '../../core/spec/settings.ts';
import { ADMIN_API_KEY } from '../../bench/load/requests.ts';
import { OPERATOR_KEY } from '../helpers/gateway.ts';

describe('onOffSetting', () => {
  test('on, true, yes, 1 and off, false, no, 0, in any case and with spaces around; unset is the default', () => {
    for (const on of ['on', 'true', 'yes', '1', 'ON', ' True ']) expect(onOffSetting('KEYWAY_X', on, false)).toBe(true);
    for (const off of ['off', 'false', 'no', '0', 'OFF', 'False ']) expect(onOffSetting('KEYWAY_X', off, true)).toBe(false);
    expect(onOffSetting('KEYWAY_X', undefined, true)).toBe(true);
    expect(onOffSetting('KEYWAY_X', '', false)).toBe(false);
  });

  test('anything else is refused, naming the variable', () => {
    expect(() => onOffSetting('KEYWAY_X', 'maybe', true)).toThrow(SettingError);
    expect(() => onOffSetting('KEYWAY_X', 'disabled', true)).toThrow('KEYWAY_X must be on or off; got "disabled".');
  });
});

describe('numbers', () => {
  test('an integer out of range or not an integer is refused, never replaced by the default', () => {
    expect(integerSetting('KEYWAY_X', '7', 10, 1, 200)).toBe(7);
    expect(integerSetting('KEYWAY_X', undefined, 10, 1, 200)).toBe(10);
    for (const bad of ['0', '201', 'abc', '1.5', '-3']) expect(() => integerSetting('KEYWAY_X', bad, 10, 1, 200)).toThrow(SettingError);
  });

  // QA19 ops L3: Number() read `1e3` as 1000 and `42630.0` as 42630; the docs say integers, so digits only.
  test('an integer is digits only: an exponent, a trailing .0, a sign or a hex form is refused', () => {
    expect(integerSetting('KEYWAY_X', ' 42 ', 10, 1, 200)).toBe(42);
    for (const bad of ['1e2', '42.0', '+42', '0x2a', '4_2', '42.']) {
      expect(() => integerSetting('KEYWAY_X', bad, 10, 1, 200)).toThrow(`KEYWAY_X must be an integer between 1 and 200; got ${JSON.stringify(bad)}.`);
    }
  });

  test('a number may have a fraction; its minimum may be excluded', () => {
    expect(numberSetting('KEYWAY_X', '0.5', 8, { minimum: 0, aboveMinimum: true, maximum: 10 })).toBe(0.5);
    expect(() => numberSetting('KEYWAY_X', '0', 8, { minimum: 0, aboveMinimum: true, maximum: 10 })).toThrow(
      'KEYWAY_X must be a number greater than 0 and at most 10; got "0".',
    );
    expect(() => numberSetting('KEYWAY_X', 'Infinity', 8, { minimum: 0, maximum: 10 })).toThrow('KEYWAY_X must be a number from 0 to 10');
  });
});

describe('urlSetting', () => {
  test('an http(s) URL with a host is taken; unset is undefined', () => {
    expect(urlSetting('KEYWAY_X_BASE_URL', 'https://api.example.com/v1')).toBe('https://api.example.com/v1');
    expect(urlSetting('KEYWAY_X_BASE_URL', undefined)).toBeUndefined();
  });

  test('what is not one is refused without echoing it (a URL can hold a password)', () => {
    for (const [bad, message] of [
      ['https://user:Sup3rSecret@', 'is not a URL'],
      ['ftp://user:Sup3rSecret@files.example', 'must start with http:// or https://; got the scheme ftp:'],
      ['Sup3rSecret', 'is not a URL'],
    ] as const) {
      const refusal = (() => {
        try {
          urlSetting('KEYWAY_X_BASE_URL', bad);
        } catch (error) {
          return (error as Error).message;
        }
        return 'taken';
      })();
      expect(refusal).toContain(`KEYWAY_X_BASE_URL ${message}`);
      expect(refusal).not.toContain('Sup3rSecret');
    }
  });
});

describe('operator secrets', () => {
  test('a short, spaced, repetitive or narrow secret is refused without quoting it', () => {
    for (const weak of [
      'x',
      'correct horse battery staple and more words',
      'ab'.repeat(20),
      'aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd',
      'Canary0123456789'.repeat(2),
    ]) {
      expect(weakSecretReason(weak)).toBeDefined();
      expect(() => secretSetting('KEYWAY_ADMIN_KEY', weak)).toThrow(/^KEYWAY_ADMIN_KEY is too weak: /);
    }
    expect(() => secretSetting('KEYWAY_ADMIN_KEY', 'Canary-short')).not.toThrow(/Canary/);
  });

  test("generated keys, openssl rand -base64 32 and the tests' and benches' own operator keys are taken; empty is unset", () => {
    for (const strong of [OPERATOR_KEY, ADMIN_API_KEY, 'kw_op_' + 'Ab3xY9'.repeat(6) + 'Qz7wKp', 'q3BvdhzqNOAT6MqudHtUaN4bvvbpo0h3FBvFNPyzaGM=']) {
      expect({ strong, weakness: weakSecretReason(strong) }).toEqual({ strong, weakness: undefined });
    }
    expect(secretSetting('KEYWAY_ADMIN_KEY', '')).toBeUndefined();
  });
});

/** Runs `read` in an empty working directory: a developer's ./data/keyway.db would draw the earlier-release refusal. */
function inEmptyDirectory<Value>(read: () => Value): Value {
  const previous = process.cwd();
  const directory = mkdtempSync(join(tmpdir(), 'keyway-settings-cwd-'));
  process.chdir(directory);
  try {
    return read();
  } finally {
    process.chdir(previous);
    rmSync(directory, { recursive: true, force: true });
  }
}

describe('where the embedded database lives', () => {
  test('in KEYWAY_DATA_DIR when only that is set, beside the master key and the usage journal', () => {
    const config = inEmptyDirectory(() => loadConfig({ KEYWAY_DATA_DIR: '/srv/keyway-volume-that-does-not-exist' }));
    expect(config.databaseUrl).toBe(`file:${join('/srv/keyway-volume-that-does-not-exist', 'keyway.db')}`);
    expect(config.dataDirectory).toBe('/srv/keyway-volume-that-does-not-exist');
  });

  test('a default start is unchanged: ./data/keyway.db and ./data', () => {
    const { config, data } = inEmptyDirectory(() => ({ config: loadConfig({}), data: resolve('./data') }));
    expect(config.databaseUrl).toBe('file:./data/keyway.db');
    expect(config.dataDirectory).toBe(data);
  });

  test('KEYWAY_DATABASE_URL still wins, and without KEYWAY_DATA_DIR the data directory is its folder', () => {
    expect(loadConfig({ KEYWAY_DATA_DIR: '/srv/a', KEYWAY_DATABASE_URL: 'file:/srv/b/other.db' })).toMatchObject({
      databaseUrl: 'file:/srv/b/other.db',
      dataDirectory: '/srv/a',
    });
    expect(loadConfig({ KEYWAY_DATABASE_URL: 'file:/srv/b/other.db' }).dataDirectory).toBe('/srv/b');
  });
});
