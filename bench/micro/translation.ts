import { do_not_optimize, group } from 'mitata';
import { encodeChatCompletion } from '../../core/wire/openai-encoder.ts';
import { typicalChatRequest } from './fixtures/chat-request.ts';
import { benchmark } from './registry.ts';
import type { ProviderTranslator } from './translators.ts';

/**
 * Everything one non-streaming request spends on translation, both ways: the unit of the
 * ≤ 0.05 ms per-provider target. OpenAI runs the same path as the baseline.
 */
export function registerTranslationBenches(translators: readonly ProviderTranslator[]): void {
  group('translation round trip', () => {
    for (const translator of translators) {
      const request = typicalChatRequest(translator.model);
      benchmark(
        `round trip: ${translator.provider} (request + response)`,
        () => {
          do_not_optimize(JSON.stringify(translator.buildRequest(request, [])));
          do_not_optimize(JSON.stringify(encodeChatCompletion(translator.parseResponse(translator.responseBody))));
        },
        translator.translates ? 'translation' : undefined,
      );
    }
  });
}
