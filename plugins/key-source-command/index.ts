// Key source `command`: a provider key printed by a program the operator configured by name
// (`KEYWAY_KEY_SOURCE_COMMANDS`, or the config file). A reference names a configured command and
// nothing else: an account admin never supplies a command line, an argument or an environment.
// The program runs without a shell, with a minimal environment (PATH, and KEYWAY_KEY_PROVIDER,
// KEYWAY_KEY_ACCOUNT, KEYWAY_KEY_ID so one program can serve several keys; never Keyway's own
// variables), under a timeout; its trimmed stdout is the key, its stderr is discarded unread (it
// could echo a secret). Each command serves the accounts the operator lists in its `accounts`; a
// command without the list serves the `default` account (a single-company install) only, and the
// operator's platform keys may name any command (QA15: any account admin could name a command
// that printed another tenant's key). See docs/key-lifecycle.md, "Key sources".

import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_ACCOUNT_ID, definePlugin, PLUGIN_API_VERSION, type KeyReference, type KeySource, type KeySourceContext } from '../../core/spec/plugin.ts';
import { SettingError } from '../../core/spec/settings.ts';

const MAX_OUTPUT_BYTES = 16 * 1024;
/** A command's name: a word, so a reference can never look like a command line or a path. */
const COMMAND_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

const CommandSchema = Type.Object(
  {
    argv: Type.Array(Type.String(), { minItems: 1, description: 'The program and its arguments, run without a shell' }),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 120_000 })),
    env: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Extra environment for the program (the operator’s, never an account’s)' })),
    accounts: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: "The accounts whose keys may name this command; without it, the 'default' account only (platform keys may name any)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type CommandDefinition = Static<typeof CommandSchema>;

export const keySourceCommandConfigSchema = Type.Object(
  { commands: Type.Optional(Type.Record(Type.String(), CommandSchema, { description: 'Commands by name (KEYWAY_KEY_SOURCE_COMMANDS as JSON)' })) },
  { additionalProperties: false },
);

/** Operator configuration, checked at start: a malformed command list stops Keyway with a clear message. */
export function parseCommands(text: string | undefined): Record<string, CommandDefinition> {
  if (text === undefined || text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SettingError('KEYWAY_KEY_SOURCE_COMMANDS must be JSON: {"name": {"argv": ["/path/to/program", "arg"], "timeoutMs": 5000}}');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new SettingError('KEYWAY_KEY_SOURCE_COMMANDS must be a JSON object of commands by name');
  for (const [name, command] of Object.entries(parsed)) {
    const argv = (command as { argv?: unknown })?.argv;
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((part) => typeof part === 'string'))
      throw new SettingError(`KEYWAY_KEY_SOURCE_COMMANDS: command '${name}' needs an argv array of strings`);
    if (!COMMAND_NAME.test(name))
      throw new SettingError(`KEYWAY_KEY_SOURCE_COMMANDS: '${name}' is not a command name (letters, digits, ".", "_", "-"; at most 64)`);
    const timeoutMs = (command as { timeoutMs?: unknown }).timeoutMs;
    if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 10 || timeoutMs > 120_000))
      throw new SettingError(`KEYWAY_KEY_SOURCE_COMMANDS: command '${name}' has a timeoutMs that is not an integer from 10 to 120000`);
    const accounts = (command as { accounts?: unknown }).accounts;
    if (accounts !== undefined && (!Array.isArray(accounts) || !accounts.every((account) => typeof account === 'string' && account !== '')))
      throw new SettingError(`KEYWAY_KEY_SOURCE_COMMANDS: command '${name}' has accounts that are not a list of account ids`);
  }
  return parsed as Record<string, CommandDefinition>;
}

/**
 * Each command's program, looked up now as the spawn will look it up (the same PATH): a typo in it used
 * to start, then fail the first key that named the command.
 */
function checkPrograms(commands: Readonly<Record<string, CommandDefinition>>, source: string, path: string | undefined): void {
  for (const [name, command] of Object.entries(commands)) {
    const program = command.argv[0] ?? '';
    if (Bun.which(program, { PATH: path ?? DEFAULT_PATH }) === null)
      throw new SettingError(`${source}: command '${name}' runs ${program}, which is not an executable file${program.includes('/') ? '' : ' on the PATH'}.`);
  }
}

async function readCapped(stream: ReadableStream<Uint8Array>): Promise<string | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > MAX_OUTPUT_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function run(
  name: string,
  command: CommandDefinition,
  context: KeySourceContext,
  baseEnv: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  const timeoutMs = command.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const env: Record<string, string> = {
    PATH: baseEnv.PATH ?? DEFAULT_PATH,
    KEYWAY_KEY_PROVIDER: context.provider,
    KEYWAY_KEY_ACCOUNT: context.accountId ?? 'platform',
    ...(context.keyId === undefined ? {} : { KEYWAY_KEY_ID: context.keyId }),
    ...command.env,
  };
  let child: ReturnType<typeof Bun.spawn<'ignore', 'pipe', 'ignore'>>;
  try {
    child = Bun.spawn(command.argv, { stdin: 'ignore', stdout: 'pipe', stderr: 'ignore', env });
  } catch {
    throw new Error(`command '${name}' could not be started`);
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  try {
    const [output, exitCode] = await Promise.all([readCapped(child.stdout), child.exited]);
    if (timedOut) throw new Error(`command '${name}' did not finish within ${timeoutMs} ms and was killed`);
    if (exitCode !== 0) throw new Error(`command '${name}' exited with status ${exitCode}`);
    if (output === undefined) throw new Error(`command '${name}' printed more than ${MAX_OUTPUT_BYTES} bytes`);
    const key = output.trim();
    if (key === '') throw new Error(`command '${name}' printed nothing`);
    if (/\s/.test(key)) throw new Error(`command '${name}' printed more than the key (several words or lines)`);
    return key;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

export function createCommandKeySource(
  commands: Readonly<Record<string, CommandDefinition>>,
  baseEnv: Readonly<Record<string, string | undefined>>,
): KeySource {
  /** Null: a platform key, which may name any command. */
  const serves = (command: CommandDefinition, accountId: string | null): boolean =>
    accountId === null || (command.accounts === undefined ? accountId === DEFAULT_ACCOUNT_ID : command.accounts.includes(accountId));
  /**
   * Without `context`, only the reference's form (its account is not known yet). A command the account
   * may not name gets the answer an unknown name gets, and the names listed are the account's own: a
   * refusal says nothing of what other accounts are served by.
   */
  const validate = (reference: KeyReference, context?: { accountId: string | null }): string | undefined => {
    if (typeof reference.locator !== 'string' || !COMMAND_NAME.test(reference.locator))
      return 'the locator must be the name of a command the operator configured (letters, digits, ".", "_", "-"); command lines are never accepted';
    if (Object.keys(reference.options ?? {}).length > 0) return 'the command source takes no options (arguments are the operator’s)';
    if (context === undefined) return undefined;
    const command = Object.hasOwn(commands, reference.locator) ? commands[reference.locator] : undefined;
    if (command === undefined || !serves(command, context.accountId)) {
      const names = Object.entries(commands)
        .filter(([, candidate]) => serves(candidate, context.accountId))
        .map(([name]) => name);
      return `the locator must name a command the operator configured for this account (${names.length > 0 ? names.join(', ') : 'none are'}); command lines are never accepted`;
    }
    return undefined;
  };
  return {
    name: 'command',
    validate,
    async fetch(reference, context) {
      const problem = validate(reference, context);
      if (problem !== undefined) throw new Error(problem);
      return { apiKey: await run(reference.locator, commands[reference.locator] as CommandDefinition, context, baseEnv) };
    },
  };
}

export const keySourceCommandPlugin = definePlugin({
  name: 'key-source-command',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'key-source',
  environment: [{ name: 'KEYWAY_KEY_SOURCE_COMMANDS', description: 'The commands key references may run, as JSON' }],
  description: 'Provider keys printed by programs the operator configured by name (no shell, timeout)',
  configSchema: keySourceCommandConfigSchema,
  setup({ config, env }) {
    const commands = config.commands ?? parseCommands(env.KEYWAY_KEY_SOURCE_COMMANDS);
    checkPrograms(commands, config.commands === undefined ? 'KEYWAY_KEY_SOURCE_COMMANDS' : 'plugins["key-source-command"].commands', env.PATH);
    return { keySource: createCommandKeySource(commands, env) };
  },
});
