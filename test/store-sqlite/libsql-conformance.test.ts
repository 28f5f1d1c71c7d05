// The libSQL storage of the embedded store through the store conformance suite, on the native client
// and a temporary file (libsql-file.ts): its readConsistent (a `read` transaction) included.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeStoreConformance } from '../conformance/store.ts';
import { openLibsqlFileStore } from './libsql-file.ts';

describeStoreConformance('libsql (native client, file)', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-libsql-conformance-'));
  const store = await openLibsqlFileStore(join(directory, 'keyway.db'));
  return {
    store,
    cleanup() {
      store.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
});
