import { do_not_optimize, group } from 'mitata';
import { typicalChatRequest } from './fixtures/chat-request.ts';
import { benchmark } from './registry.ts';
import type { ProviderTranslator } from './translators.ts';

/** The upstream body for the typical request, serialised as the adapter sends it. */
export function registerRequestBuildBenches(translators: readonly ProviderTranslator[]): void {
  group('request build', () => {
    for (const translator of translators) {
      const request = typicalChatRequest(translator.model);
      const verb = translator.translates ? 'translate' : 'build';
      // A fresh warnings array per call, as each request gets its own.
      benchmark(
        `${verb}: ${translator.provider} request (${translator.requestBuilder} + stringify)`,
        () => do_not_optimize(JSON.stringify(translator.buildRequest(request, []))),
        translator.translates ? 'translation' : undefined,
      );
    }
  });
}
