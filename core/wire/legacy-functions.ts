// OpenAI's deprecated function calling (`functions`, `function_call`), for the translations of
// providers that have only tools. Dropped with a warning, it turned a request for a call into a plain
// answer (Perplexity forwarded it, and Sonar ignored it without a word): the client never learnt why
// its function was not called. As for the deprecated `function` role, a translation refuses it, and
// the refusal is a candidate's, so a fallback chain moves on to a provider that serves it (QA20 seed F8).

import { KeywayError } from '../errors.ts';
import type { ChatRequest } from '../spec/vocabulary.ts';

/** Throws 400 `unsupported_feature` naming `functions` when the request offers any. */
export function refuseLegacyFunctions(request: ChatRequest, provider: string): void {
  const functions = (request as Record<string, unknown>).functions;
  if (!Array.isArray(functions) || functions.length === 0) return;
  throw new KeywayError(
    'unsupported_feature',
    {
      detail: `${provider} has no legacy function calling ('functions' and 'function_call', OpenAI's deprecated form): send tools, with tool_choice, instead; answers then carry tool_calls.`,
    },
    { param: 'functions' },
  );
}
