import { ERROR_TABLE, isErrorCode, KeywayError } from '../errors.ts';
import { redactedExcerpt, redactSecrets } from '../logger.ts';
import type { HookStage, RequestContext } from '../spec/plugin.ts';
import type { HookTable } from '../registry.ts';

/** What an out-of-tree plugin may set on the Error it throws; every field is checked, none trusted. */
interface PluginRefusalFields {
  keywayCode?: unknown;
  keywayParam?: unknown;
  retryAfterSeconds?: unknown;
  extra?: unknown;
}

/**
 * Out-of-tree plugins cannot import KeywayError (a compiled binary has no core module on disk), so
 * an Error carrying `keywayCode` — a 4xx code from the error table — refuses the request with that
 * code. `keywayParam` names the offending field; `retryAfterSeconds` becomes `Retry-After`. A plugin
 * cannot pose as a core or upstream failure: 5xx codes are not accepted this way.
 */
function refusalFromPlugin(error: unknown): KeywayError | undefined {
  if (!(error instanceof Error)) return undefined;
  const fields = error as Error & PluginRefusalFields;
  const code = fields.keywayCode;
  if (typeof code !== 'string' || !isErrorCode(code) || ERROR_TABLE[code].status >= 500) return undefined;
  const { extra, keywayParam, retryAfterSeconds } = fields;
  return new KeywayError(
    code,
    {},
    {
      message: redactedExcerpt(error.message, 1000),
      param: typeof keywayParam === 'string' ? keywayParam.slice(0, 200) : null,
      retryAfterSeconds: typeof retryAfterSeconds === 'number' && Number.isFinite(retryAfterSeconds) && retryAfterSeconds >= 0 ? retryAfterSeconds : undefined,
      extra: extra !== null && typeof extra === 'object' && !Array.isArray(extra) ? redactedExtra(extra as Record<string, unknown>) : undefined,
    },
  );
}

/** A plugin's extra fields, scrubbed of secrets; at most a few KB, and only JSON values survive. */
function redactedExtra(extra: Record<string, unknown>): Record<string, unknown> | undefined {
  try {
    const text = JSON.stringify(extra);
    if (text === undefined || text.length > 4096) return undefined;
    return JSON.parse(redactSecrets(text)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function pluginFailure(plugin: string, stage: HookStage, error: unknown): KeywayError {
  if (error instanceof KeywayError) return error;
  const refusal = refusalFromPlugin(error);
  if (refusal !== undefined) return refusal;
  const detail = redactedExcerpt(error instanceof Error ? error.message : String(error), 300);
  return new KeywayError('plugin_error', { plugin, stage, detail });
}

/**
 * Runs a stage's hooks in dependency order. Stays synchronous until a hook returns a promise, so a
 * stage without async hooks costs no microtask. A KeywayError refuses the request as it is; any
 * other throw becomes a `plugin_error` naming the plugin.
 */
export function runHooks(table: HookTable, stage: Exclude<HookStage, 'account'>, context: RequestContext): void | Promise<void> {
  const hooks = table[stage];
  for (let position = 0; position < hooks.length; position++) {
    const hook = hooks[position] as (typeof hooks)[number];
    let result: void | Promise<void>;
    try {
      result = hook.run(context);
    } catch (error) {
      throw pluginFailure(hook.plugin, stage, error);
    }
    if (result instanceof Promise) return continueAsync(table, stage, context, position, result);
  }
}

async function continueAsync(
  table: HookTable,
  stage: Exclude<HookStage, 'account'>,
  context: RequestContext,
  position: number,
  pending: Promise<void>,
): Promise<void> {
  const hooks = table[stage];
  try {
    await pending;
  } catch (error) {
    throw pluginFailure((hooks[position] as (typeof hooks)[number]).plugin, stage, error);
  }
  for (let next = position + 1; next < hooks.length; next++) {
    const hook = hooks[next] as (typeof hooks)[number];
    try {
      await hook.run(context);
    } catch (error) {
      throw pluginFailure(hook.plugin, stage, error);
    }
  }
}
