import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MasterKeyring } from '../../plugins/crypto-local/envelope.ts';
import { generateMasterKey, loadMasterKeyring, type MasterKeyConfig, type MasterKeyReporter } from '../../plugins/crypto-local/master-key.ts';

export interface RecordingReporter extends MasterKeyReporter {
  warnings: string[];
  notices: string[];
}

export function recordingReporter(): RecordingReporter {
  const warnings: string[] = [];
  const notices: string[] = [];
  return { warnings, notices, warn: (message) => warnings.push(message), info: (message) => notices.push(message) };
}

/** A scratch directory per test; `cleanup` removes every one made so far. */
export function temporaryDirectories(): { make(): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make() {
      const directory = mkdtempSync(join(tmpdir(), 'keyway-crypto-'));
      made.push(directory);
      return directory;
    },
    cleanup() {
      for (const directory of made.splice(0)) rmSync(directory, { recursive: true, force: true });
    },
  };
}

export function keyringFrom(config: MasterKeyConfig, env: Record<string, string> = {}, dataDirectory = '/nonexistent-keyway-test'): MasterKeyring {
  return loadMasterKeyring({ config, env, dataDirectory, reporter: recordingReporter() });
}

/** Every way a key could leak into a string: as given, and in each encoding Keyway uses. */
export function encodingsOf(bytes: Buffer): string[] {
  return [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('base64').replace(/=+$/, '')];
}

export { generateMasterKey };
