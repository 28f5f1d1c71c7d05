// The one lifecycle runner. Every inbound operation (chat, streams, messages, embeddings, token
// counting, and any a plugin adds) runs here: auth → key-resolve → route → call → account. The
// account stage runs exactly once for every authenticated request, whether it succeeded, failed,
// was refused by a policy or cancelled by the client. Nothing here awaits the database.

import type { Accountant } from '../accounting/account.ts';
import { estimatedUsage } from '../accounting/token-estimate.ts';
import type { ConfigSnapshots } from '../credentials/snapshot.ts';
import { descriptorFromError, errorFromDescriptor, KeywayError } from '../errors.ts';
import { parseJsonText, readBodyText } from '../http/kit/body.ts';
import { requestIdOf } from '../http/kit/respond.ts';
import type { Logger } from '../logger.ts';
import type { HookTable } from '../registry.ts';
import type { Router } from '../routing/router.ts';
import type { ChatOperation, Dialect, InboundOperation, NativeCalls, ParseContext, UnaryOperation } from '../spec/dialect.ts';
import type { RequestContext } from '../spec/lifecycle.ts';
import type { Principal } from '../spec/principal.ts';
import type { CallContext, NativeDialectApi, ProviderAdapter } from '../spec/provider.ts';
import { viaNamesKeyway } from '../wire/upstream-policy.ts';
import { refuseSecretFields } from '../wire/secret-fields.ts';
import { validateRouting } from '../wire/request-validation.ts';
import { runAttempts, type AttemptConfirm, type AttemptDependencies, type AttemptSuccess } from './attempts.ts';
import { createRequestContext } from './context.ts';
import { DrainEnded, untilDrainEnds, type DrainWatch } from './drain.ts';
import { runHooks } from './hooks.ts';
import { holdOpening } from './opening-hold.ts';
import { nativeBodyForCandidate, requestForCandidate, type SubstituteTarget } from './substitute-output.ts';
import { shouldNotRetry } from './retry-advice.ts';
import { keySearchOf } from '../credentials/key-echo.ts';
import { chatAnswer, errorResponse, inferenceHeaders, jsonAnswer, rejectFailedGeneration, streamAnswer, type OpenedStream } from './respond.ts';

export interface LifecycleDependencies {
  /** The principal of the request's key, or 401; nothing else judged yet (`recognise`). */
  authenticate(headers: Headers): Principal;
  /**
   * The rest of `admit` (core/credentials/authenticate.ts), before anything else about the request is
   * judged: the plugins' guards (allowed_ips), then the X-Team-ID check. Absent: nothing to check.
   */
  admit?(principal: Principal, headers: Headers, clientAddress: () => string | undefined): void;
  snapshots: ConfigSnapshots;
  router: Router;
  accountant: Accountant;
  attempts: AttemptDependencies;
  hooks: HookTable;
  logger: Logger;
  maxBodyBytes: number;
  /** How deeply a request body may nest; the default when absent. */
  maxJsonDepth?: number;
  /** How long a request body may take to arrive in full; the default when absent. */
  bodyTimeoutMs?: number;
  /** The shutdown drain's deadline: in-flight streams then end with an error event (attempts.drain ends the rest). */
  drain?: DrainWatch;
}

const noAddress = (): undefined => undefined;

const LOOP_DETECTED = new KeywayError('loop_detected', {
  detail:
    "This request already passed through a Keyway gateway (its Via header names one), so answering it would loop: a provider key's base_url or a KEYWAY_<PROVIDER>_BASE_URL points at a Keyway. Point it at the provider itself.",
});

export class LifecycleRunner {
  constructor(private readonly dependencies: LifecycleDependencies) {}

  /**
   * Runs one inbound request; always answers in the operation's dialect, never throws. A booked
   * answer is released once its usage row is in the journal (at once for a turn's first row, else the
   * turn's group write at its end): a client that has its answer has its row on disk.
   */
  async run(request: Request, operation: InboundOperation, clientAddress: () => string | undefined = noAddress): Promise<Response> {
    const requestId = requestIdOf(request);
    // Keyway marks every upstream request with `Via: 1.1 keyway-…`: one that comes back is a loop
    // (a base URL that reaches Keyway itself), refused before it costs anything. One header lookup.
    if (viaNamesKeyway(request.headers.get('via'))) return errorResponse(operation.dialect, LOOP_DETECTED.toDescriptor(), requestId);
    let principal: Principal;
    try {
      principal = this.dependencies.authenticate(request.headers);
    } catch (error) {
      // No account to book an unauthenticated request to: it is answered, not accounted.
      return errorResponse(operation.dialect, descriptorFromError(error, requestId), requestId);
    }
    const context = createRequestContext(requestId, request, principal, operation.endpoint, clientAddress);
    let response: Response;
    try {
      // Where the call comes from is judged before its role, its body or its team (one order: `admit`):
      // a key bound to a network learns nothing more from elsewhere. A refusal is booked, as before.
      this.dependencies.admit?.(principal, request.headers, () => context.clientIp);
      const text = await readBodyText(request, this.dependencies);
      context.bodyText = text;
      const body = parseJsonText(text, this.dependencies.maxBodyBytes, this.dependencies.maxJsonDepth);
      // Before any dialect or router reads a name (and could quote it): a key sent as one is refused.
      refuseSecretFields(body, request.headers);
      // Every dialect copies `routing` as sent: one check here holds them all to the rules chat has.
      const routing = typeof body === 'object' && body !== null ? (body as { routing?: unknown }).routing : undefined;
      // null is no routing, as the dialects read it.
      if (routing !== undefined && routing !== null) validateRouting(routing);
      context.request = operation.parse(body, this.parseContext(context));
      if (operation.kind === 'chat') this.applyDefaultModel(context);
      const native = operation.kind === 'chat' ? nativeCallsFor(operation, context) : undefined;
      const preparing = this.runStagesBeforeCall(context, native);
      // A hook still waiting when the drain ends requests (an approval's `Prefer: wait`, a third-party
      // plugin's own wait) must not hold the shutdown: the request is answered 503 there (drain.ts).
      if (preparing !== undefined) await (this.dependencies.drain === undefined ? preparing : untilDrainEnds(preparing, this.dependencies.drain));
      // The hooks have read what they need from the text: a long stream does not hold a second copy of its body.
      context.bodyText = undefined;
      response =
        operation.kind === 'unary' ? await this.callUnary(context, operation, request.signal) : await this.callChat(context, operation, native, request.signal);
    } catch (error) {
      response = this.failed(context, operation.dialect, error);
    }
    // A stream is booked when it ends (streamAnswer waits there); its headers need not wait.
    const journaled = context.outcome === undefined ? undefined : this.dependencies.accountant.journaled();
    if (journaled !== undefined) await journaled;
    return response;
  }

  private parseContext(context: RequestContext): ParseContext {
    const router = this.dependencies.router;
    return {
      principal: context.principal,
      headers: context.headers,
      warnings: context.warnings,
      peekProvider: (model, providerField) => router.peekProvider(context, model, providerField),
    };
  }

  /**
   * The model a request names, or the provider key's `default_model` when it names only a provider:
   * in the `provider` field, or in `X-Provider` (docs/api.md names both; the header was missed, QA15).
   */
  private applyDefaultModel(context: RequestContext): void {
    const body = context.request;
    if (body.model !== undefined && body.model !== '') return;
    const provider = body.provider ?? (context.headers.get('x-provider')?.trim() || undefined);
    const key =
      provider === undefined
        ? undefined
        : this.dependencies.snapshots
            .keysFor(context.principal.accountId)
            .account.get(provider)
            ?.find((candidate) => candidate.settings.default_model);
    if (key?.settings.default_model === undefined) throw new KeywayError('missing_field', { param: 'model' }, { param: 'model' });
    body.model = key.settings.default_model;
    context.defaultModelKeyId = key.id;
  }

  /**
   * The auth, key-resolve, route and call stages: the core's work for each, then the plugins' hooks.
   * Synchronous unless a hook is async: no microtask is spent when none is. `native`: the operation's
   * use of providers' own APIs, which may leave candidates out at the route stage.
   */
  runStagesBeforeCall(context: RequestContext, native?: NativeCalls): void | Promise<void> {
    if (context.principal.role === 'viewer' || !context.principal.byokAccess) {
      throw new KeywayError('byok_access_denied', { detail: 'This key may read usage but not call models.' });
    }
    const auth = runHooks(this.dependencies.hooks, 'auth', context);
    if (auth !== undefined) return auth.then(() => this.afterAuth(context, native));
    return this.afterAuth(context, native);
  }

  private afterAuth(context: RequestContext, native: NativeCalls | undefined): void | Promise<void> {
    this.dependencies.router.resolveKeys(context);
    const keyResolve = runHooks(this.dependencies.hooks, 'keyResolve', context);
    if (keyResolve !== undefined) return keyResolve.then(() => this.afterKeyResolve(context, native));
    return this.afterKeyResolve(context, native);
  }

  /**
   * A request only providers' own API can serve (a hosted tool) keeps the candidates whose adapter
   * has it, before the route hooks (budgets reserve for the candidates that can actually serve);
   * none left is the operation's own refusal.
   */
  private keepNativeCandidates(context: RequestContext, native: NativeCalls): void {
    const refusal = native.requiredBecause(context);
    if (refusal === undefined) return;
    const providers = this.dependencies.attempts.providers;
    context.candidates = context.candidates.filter((candidate) => nativeApiOf(providers.get(candidate.provider), native) !== undefined);
    if (context.candidates.length === 0) throw refusal;
  }

  private afterKeyResolve(context: RequestContext, native: NativeCalls | undefined): void | Promise<void> {
    const { hooks, router } = this.dependencies;
    router.route(context);
    if (native !== undefined && context.candidates.length > 0) this.keepNativeCandidates(context, native);
    const route = runHooks(hooks, 'route', context);
    if (route !== undefined)
      return route.then(() => {
        router.requireCandidates(context);
        return runHooks(hooks, 'call', context);
      });
    router.requireCandidates(context);
    return runHooks(hooks, 'call', context);
  }

  /**
   * Tries the candidates; `run` settles once the upstream's first byte is in hand, and `confirm`, when
   * given, after it: the answer returned is fallback's point of no return.
   */
  attempt<Value>(
    context: RequestContext,
    run: (adapter: ProviderAdapter, call: CallContext) => Promise<Value>,
    clientSignal: AbortSignal | undefined,
    confirm?: AttemptConfirm<Value>,
  ): Promise<AttemptSuccess<Value>> {
    return runAttempts(this.dependencies.attempts, context, this.dependencies.router.routingFor(context), run, clientSignal, confirm);
  }

  private async callChat(context: RequestContext, operation: ChatOperation, native: NativeCalls | undefined, clientSignal: AbortSignal): Promise<Response> {
    const { accountant } = this.dependencies;
    if (context.request.stream !== true) {
      // Non-streamed calls run to completion even if the client leaves: watching the connection costs
      // about a tenth of the gateway's throughput, and the answer is usually seconds away. Streams,
      // which run long, are cancelled when the client goes.
      const success = await this.attempt(
        context,
        (adapter, call) => {
          const api = nativeApiOf(adapter, native);
          const target = this.substituteTarget(adapter, call);
          const calling =
            api === undefined
              ? adapter.chat(requestForCandidate(context, call, target), call)
              : api.call(nativeBodyForCandidate((native as NativeCalls).body(context, call.model), context, call, target), call);
          return calling.then((result) => rejectFailedGeneration(adapter.name, result));
        },
        undefined,
      );
      success.done();
      this.markNative(context, native);
      return chatAnswer(accountant, operation.dialect, context, success);
    }
    // The stream's contentless opening is held a moment, so an error right after it still falls back (opening-hold.ts).
    const holdMs = this.dependencies.attempts.config.streamOpeningHoldMs;
    const success = await this.attempt(
      context,
      (adapter, call) => openStream(adapter, call, context, native, this.substituteTarget(adapter, call)),
      clientSignal,
      holdMs > 0 ? (opened) => holdOpening(opened, holdMs) : undefined,
    );
    this.markNative(context, native);
    return streamAnswer(accountant, operation.dialect, context, success, this.dependencies.drain);
  }

  /** The candidate's provider and its model's output limit, for what a substitute is sent (substitute-output.ts). */
  private substituteTarget(adapter: ProviderAdapter, call: CallContext): SubstituteTarget {
    return { provider: adapter.name, outputLimit: this.dependencies.router.outputLimitOf(adapter.name, call.model) };
  }

  /** Says which API served, for the dialect's answer (warnings that held only for a translation). */
  private markNative(context: RequestContext, native: NativeCalls | undefined): void {
    const served = context.served;
    if (native === undefined || served === undefined) return;
    if (nativeApiOf(this.dependencies.attempts.providers.get(served.provider), native) !== undefined) served.api = native.api;
  }

  private async callUnary(context: RequestContext, operation: UnaryOperation<unknown>, clientSignal: AbortSignal): Promise<Response> {
    const success = await this.attempt(context, (adapter, call) => operation.invoke(adapter, call, context), clientSignal);
    success.done();
    const answer = operation.answer(success.value, context);
    const outcome = this.dependencies.accountant.account(context, {
      status: 200,
      usage: answer.usage,
      finishReason: undefined,
      error: undefined,
      streamed: false,
      servedModel: answer.model,
    });
    return jsonAnswer(answer.body, inferenceHeaders(context, answer.model, outcome.costUsd), keySearchOf(success.call.credential));
  }

  /** Answers a failed or refused request and books it: failures are usage too (they carry latency). */
  private failed(context: RequestContext, dialect: Dialect, error: unknown): Response {
    const descriptor = descriptorFromError(error, context.requestId);
    if (!(error instanceof KeywayError)) {
      this.dependencies.logger.error(
        { requestId: context.requestId, error: error instanceof Error ? error.stack : String(error) },
        'request failed unexpectedly',
      );
    }
    const cut = (error instanceof DrainEnded && servedByCutAttempt(context)) || leftWhileHeld(error, context);
    this.dependencies.accountant.account(context, {
      status: descriptor.status,
      usage: cut ? estimatedUsage(context.request, 0, undefined, this.dependencies.accountant.countedPrompt(context)) : undefined,
      finishReason: undefined,
      error: descriptor,
      streamed: context.request.stream === true,
      ...(cut ? { usageEstimated: true } : {}),
    });
    const headers =
      error instanceof KeywayError && error.headers !== undefined
        ? { ...inferenceHeaders(context, undefined, undefined), ...error.headers }
        : inferenceHeaders(context, undefined, undefined);
    if (shouldNotRetry(context, descriptor)) headers['x-should-retry'] = 'false';
    return errorResponse(dialect, descriptor, context.requestId, headers);
  }
}

/**
 * Whether the shutdown drain cut the last attempt while its upstream worked on it; if so, that
 * attempt serves the request as far as its books go. The provider bills what it read, so the row is
 * booked as a stream the drain cuts is: Keyway's estimate of the prompt (nothing of an answer that
 * never arrived), flagged, at that model's list price, and never free. A request the drain ended
 * between attempts (a backoff) or before any call books nothing.
 */
function servedByCutAttempt(context: RequestContext): boolean {
  const attempt = context.attempts.at(-1);
  if (attempt === undefined || attempt.upstreamCalled === false || attempt.reason !== 'not_ready') return false;
  context.served ??= { provider: attempt.provider, model: attempt.model, keyId: attempt.keyId, owner: attempt.owner, startedAt: attempt.startedAt };
  return true;
}

/**
 * Whether the client left while the opening hold held a stream its provider had begun (attempts.ts
 * names who served it then). Booked as a client leaving mid-stream is: 499, that provider and key, the
 * prompt at Keyway's estimate, flagged, never free; the hold decides fallback, never the books.
 */
function leftWhileHeld(error: unknown, context: RequestContext): boolean {
  return error instanceof KeywayError && error.code === 'client_closed' && context.served !== undefined;
}

/** The operation's use of providers' own APIs, when this request wants it (NativeCalls.wanted). */
function nativeCallsFor(operation: ChatOperation, context: RequestContext): NativeCalls | undefined {
  const native = operation.native;
  return native === undefined || native.wanted?.(context) === false ? undefined : native;
}

/** The adapter's own API for the operation's dialect, when the operation uses one and the adapter has it. */
function nativeApiOf(adapter: ProviderAdapter | undefined, native: NativeCalls | undefined): NativeDialectApi | undefined {
  return native === undefined ? undefined : adapter?.native?.[native.api];
}

/**
 * The first part of a stream decides whether the attempt succeeded: an error there may still fall back.
 * A provider with its own API for the operation's dialect (`native`) is called through it.
 */
export async function openStream(
  adapter: ProviderAdapter,
  call: CallContext,
  context: RequestContext,
  native: NativeCalls | undefined,
  target: SubstituteTarget,
): Promise<OpenedStream> {
  const api = nativeApiOf(adapter, native);
  const parts =
    api === undefined
      ? await adapter.chatStream(requestForCandidate(context, call, target), call)
      : await api.stream(nativeBodyForCandidate((native as NativeCalls).body(context, call.model), context, call, target), call);
  const iterator = parts[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) throw new KeywayError('upstream_error', { detail: `${adapter.name} closed the stream without sending anything` }, { reason: 'server_error' });
  if (first.value.type === 'error') throw errorFromDescriptor(first.value.error);
  return { iterator, first: first.value };
}
