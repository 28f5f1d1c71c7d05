// Key source `command`: a provider key printed by a program the operator configured by name
// (`KEYWAY_KEY_SOURCE_COMMANDS`, or the config file). A reference names a configured command and
// nothing else: an account admin never supplies a command line, an argument or an environment.
// The program runs without a shell, with a minimal environment (PATH, and KEYWAY_KEY_PROVIDER,
// KEYWAY_KEY_ACCOUNT, KEYWAY_KEY_ID so one program can serve several keys; never Keyway's own
// variables), under a timeout; its trimmed stdout is the key, its stderr is discarded unread (it
// could echo a secret). See docs/key-lifecycle.md, "Key sources".

import { Type, type Static } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type KeyReference, type KeySource, type KeySourceContext } from '../../core/spec/plugin.ts';

const MAX_OUTPUT_BYTES = 16 * 1024;
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

const CommandSchema = Type.Object(
  {
    argv: Type.Array(Type.String(), { minItems: 1, description: 'The program and its arguments, run without a shell' }),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 120_000 })),
    env: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Extra environment for the program (the operator’s, never an account’s)' })),
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
    throw new Error('KEYWAY_KEY_SOURCE_COMMANDS must be JSON: {"name": {"argv": ["/path/to/program", "arg"], "timeoutMs": 5000}}');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new Error('KEYWAY_KEY_SOURCE_COMMANDS must be a JSON object of commands by name');
  for (const [name, command] of Object.entries(parsed)) {
    const argv = (command as { argv?: unknown })?.argv;
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((part) => typeof part === 'string'))
      throw new Error(`KEYWAY_KEY_SOURCE_COMMANDS: command '${name}' needs an argv array of strings`);
  }
  return parsed as Record<string, CommandDefinition>;
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
    PATH: baseEnv.PATH ?? '/usr/local/bin:/usr/bin:/bin',
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
  const validate = (reference: KeyReference): string | undefined => {
    if (typeof reference.locator !== 'string' || !Object.hasOwn(commands, reference.locator)) {
      const names = Object.keys(commands);
      return `the locator must name a command the operator configured (${names.length > 0 ? names.join(', ') : 'none are'}); command lines are never accepted`;
    }
    if (Object.keys(reference.options ?? {}).length > 0) return 'the command source takes no options (arguments are the operator’s)';
    return undefined;
  };
  return {
    name: 'command',
    validate,
    async fetch(reference, context) {
      const problem = validate(reference);
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
    return { keySource: createCommandKeySource(commands, env) };
  },
});
