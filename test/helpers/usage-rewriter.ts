// An upstream that misreports usage: it passes every call to a provider simulator and rewrites the
// usage of the answer (`usage`, Gemini's `usageMetadata`, wherever they sit: a body, a stream event, an
// Anthropic `message_start`), streamed or not. What the gateway reads is the provider's real answer
// with only its token counts broken, as a misbehaving OpenAI-compatible server or proxy sends them.

/**
 * How the counts are broken: left out, sent as text, as digit strings, negative, fractional, absurd
 * (`huge`: the usage object's own counts, as QA14's upstream sent them, its details such as reasoning
 * kept; `huge-everywhere`: every count, details included; `zero`: every count 0, as a server that does not
 * count sends them; `zero-cost`, `negative-cost`, `text-cost`: the counts kept, Perplexity's `usage.cost`
 * figures 0, negative or text; `inflated-subsets`: the counts kept, their parts sent above them: OpenAI's
 * cached and reasoning tokens, on Chat Completions and Responses, and Gemini's cached content).
 */
export type UsageFault =
  | 'none'
  | 'missing'
  | 'text'
  | 'digit-strings'
  | 'negative'
  | 'fractional'
  | 'huge'
  | 'huge-everywhere'
  | 'zero'
  | 'inflated-subsets'
  | CostFault;
type CostFault = 'zero-cost' | 'negative-cost' | 'text-cost';
const COST_FAULTS: Readonly<Record<CostFault, UsageFault>> = { 'zero-cost': 'zero', 'negative-cost': 'negative', 'text-cost': 'text' };

function isCostFault(fault: UsageFault): fault is CostFault {
  return fault in COST_FAULTS;
}

export interface UsageRewriter {
  url: string;
  /** The fault applied to the answers of the calls that follow. */
  fault: UsageFault;
  /** Where calls are passed on (a simulator's base URL); settable after start. */
  target: string;
  stop(): Promise<void>;
}

const USAGE_KEYS = new Set(['usage', 'usageMetadata']);

function breakCount(value: number, fault: UsageFault): unknown {
  switch (fault) {
    case 'text':
      return 'abc';
    case 'digit-strings':
      return String(value);
    case 'negative':
      return -(value + 1);
    case 'fractional':
      return value + 0.5;
    case 'huge':
    case 'huge-everywhere':
      return 1e15;
    case 'zero':
      return 0;
    default:
      return value;
  }
}

/** Every count inside a usage object broken (`huge`: its own, not its details'); other fields (a size) kept. */
function breakCounts(value: unknown, fault: UsageFault, depth = 0): unknown {
  if (typeof value === 'number') return fault === 'huge' && depth > 1 ? value : breakCount(value, fault);
  if (Array.isArray(value)) return value.map((item) => breakCounts(item, fault, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, breakCounts(item, fault, depth + 1)]));
}

/** A usage object with its reported cost's figures (Perplexity's `cost` block) broken, the counts kept. */
function withBrokenCost(usage: unknown, fault: CostFault): unknown {
  if (usage === null || typeof usage !== 'object' || !('cost' in usage)) return usage;
  return { ...usage, cost: breakCounts((usage as { cost: unknown }).cost, COST_FAULTS[fault]) };
}

/** `details[field]` set above `whole`, where the whole is a count. */
function detailAbove(usage: Record<string, unknown>, whole: string, details: string, field: string, excess: number): void {
  const count = usage[whole];
  if (typeof count !== 'number') return;
  const existing = usage[details];
  usage[details] = { ...(existing !== null && typeof existing === 'object' ? existing : {}), [field]: count + excess };
}

/** A usage object whose parts (cached input, reasoning) are reported above their whole, the wholes kept. */
function withInflatedSubsets(usage: unknown): unknown {
  if (usage === null || typeof usage !== 'object') return usage;
  const result = { ...(usage as Record<string, unknown>) };
  detailAbove(result, 'prompt_tokens', 'prompt_tokens_details', 'cached_tokens', 993);
  detailAbove(result, 'completion_tokens', 'completion_tokens_details', 'reasoning_tokens', 496);
  detailAbove(result, 'input_tokens', 'input_tokens_details', 'cached_tokens', 993);
  detailAbove(result, 'output_tokens', 'output_tokens_details', 'reasoning_tokens', 496);
  if (typeof result.promptTokenCount === 'number') result.cachedContentTokenCount = result.promptTokenCount + 900;
  return result;
}

/** The JSON value with each usage object, at any depth, left out or broken. */
function rewrite(value: unknown, fault: UsageFault): unknown {
  if (Array.isArray(value)) return value.map((item) => rewrite(item, fault));
  if (value === null || typeof value !== 'object') return value;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!USAGE_KEYS.has(key)) result[key] = rewrite(item, fault);
    else if (isCostFault(fault)) result[key] = withBrokenCost(item, fault);
    else if (fault === 'inflated-subsets') result[key] = withInflatedSubsets(item);
    else if (fault !== 'missing') result[key] = breakCounts(item, fault);
  }
  return result;
}

/** An SSE body with each `data:` line's JSON rewritten. */
function rewriteEvents(text: string, fault: UsageFault): string {
  return text
    .split('\n')
    .map((line) => {
      if (!line.startsWith('data:')) return line;
      const payload = line.slice(5).trim();
      try {
        return `data: ${JSON.stringify(rewrite(JSON.parse(payload), fault))}`;
      } catch {
        return line;
      }
    })
    .join('\n');
}

const DROPPED_HEADERS = ['content-length', 'content-encoding', 'transfer-encoding', 'connection'];

export function startUsageRewriter(target = ''): UsageRewriter {
  const state = { fault: 'none' as UsageFault, target };
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      // The gateway may list models before the test has pointed the rewriter at its simulator.
      if (state.target === '') return Response.json({ error: { message: 'no upstream yet' } }, { status: 503 });
      const url = new URL(request.url);
      const headers = new Headers(request.headers);
      headers.delete('host');
      headers.delete('content-length');
      const answer = await fetch(`${state.target}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body: request.method === 'GET' ? undefined : await request.arrayBuffer(),
      });
      const responseHeaders = new Headers(answer.headers);
      for (const name of DROPPED_HEADERS) responseHeaders.delete(name);
      const text = await answer.text();
      const type = answer.headers.get('content-type') ?? '';
      let body = text;
      if (answer.status === 200 && state.fault !== 'none') {
        body = type.includes('event-stream') ? rewriteEvents(text, state.fault) : JSON.stringify(rewrite(JSON.parse(text), state.fault));
      }
      return new Response(body, { status: answer.status, headers: responseHeaders });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    get fault() {
      return state.fault;
    },
    set fault(value: UsageFault) {
      state.fault = value;
    },
    get target() {
      return state.target;
    },
    set target(value: string) {
      state.target = value;
    },
    async stop() {
      await server.stop(true);
    },
  };
}
