// Shared set-up for the key-source tests: scratch directories with key files, a Vault simulator
// holding a key, an OpenAI simulator with an admin key. Canary values are distinctive enough that
// finding one anywhere can only mean it leaked.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CANARY_KEY = 'sk-proj-KeySourceCanary0123456789abcdefghijklmnop';
export const VAULT_TOKEN = 'hvs.KeywaySimulatorToken0123456789';
export const VAULT_CANARY_KEY = 'sk-proj-VaultCanaryKey0123456789abcdefghijklmnop';

export function scratchDirectory(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'keyway-keysource-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function writeKeyFile(directory: string, name: string, content: string, mode = 0o600): string {
  const path = join(directory, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}
