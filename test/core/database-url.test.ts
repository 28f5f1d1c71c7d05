// KEYWAY_DATABASE_URL for a database served over the network must name its server. `postgres://` alone
// (or `postgres:///keyway`, what `postgres://${DB_HOST}/keyway` becomes when DB_HOST is unset) used to
// start: the PostgreSQL client filled in the local server and its default database, and Keyway created
// a new installation in the server's `postgres` maintenance database (QA20 ops). The value is never
// echoed: it can hold a password.

import { describe, expect, test } from 'bun:test';
import { ConfigError, loadConfig } from '../../core/config.ts';

const load = (url: string) => () => loadConfig({ KEYWAY_DATABASE_URL: url });

describe('a network database URL without a server', () => {
  for (const url of ['postgres://', 'postgres:///keyway', 'postgresql://:Sup3rSecret@/keyway', 'libsql://', 'https://']) {
    test(`${url} stops the start naming the variable, never its value`, () => {
      expect(load(url)).toThrow(ConfigError);
      expect(load(url)).toThrow(/^KEYWAY_DATABASE_URL (names no host|is not a URL); write it as /);
      expect(load(url)).not.toThrow(/Sup3rSecret/);
    });
  }

  test('a URL that does not parse is refused as such, without echoing it', () => {
    expect(load('postgresql://u:Sup3rSecret@127.0.0.1:notaport/keyway')).toThrow(
      /^KEYWAY_DATABASE_URL is not a URL; write it as postgres:\/\/user:password@host\[:port\]\/database\.$/,
    );
  });

  test('a socket folder given as the host parameter names the server', () => {
    expect(loadConfig({ KEYWAY_DATABASE_URL: 'postgres:///keyway?host=/var/run/postgresql' }).databaseUrl).toBe('postgres:///keyway?host=/var/run/postgresql');
  });

  test('URLs naming a server, and embedded files, are taken as they are', () => {
    for (const url of [
      'postgres://keyway:pw@db.internal:5432/keyway',
      'postgresql://db.internal/keyway',
      'libsql://db.example.turso.io',
      'http://127.0.0.1:8080',
    ]) {
      expect(loadConfig({ KEYWAY_DATABASE_URL: url }).databaseUrl).toBe(url);
    }
  });
});
