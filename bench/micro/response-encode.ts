import { do_not_optimize, group } from 'mitata';
import { encodeChatCompletion } from '../../core/wire/openai-encoder.ts';
import { benchmark } from './registry.ts';
import type { ProviderTranslator } from './translators.ts';

/**
 * The client's chat.completion: pass-through for OpenAI bodies, built from the neutral result for
 * everything else; then each provider's full response path from its parsed upstream body.
 */
export function registerResponseEncodeBenches(translators: readonly ProviderTranslator[]): void {
  const openAI = translators.find((translator) => !translator.translates);
  const translated = translators.find((translator) => translator.translates);

  group('response encode', () => {
    if (openAI !== undefined) {
      const result = openAI.parseResponse(openAI.responseBody);
      benchmark('encode: encodeChatCompletion (openai pass-through)', () => do_not_optimize(encodeChatCompletion(result)));
      benchmark('encode: encodeChatCompletion + stringify (openai pass-through)', () => do_not_optimize(JSON.stringify(encodeChatCompletion(result))));
    }
    if (translated !== undefined) {
      const result = translated.parseResponse(translated.responseBody);
      benchmark(`encode: encodeChatCompletion (${translated.provider} ChatResult)`, () => do_not_optimize(encodeChatCompletion(result)));
      benchmark(`encode: encodeChatCompletion + stringify (${translated.provider} ChatResult)`, () =>
        do_not_optimize(JSON.stringify(encodeChatCompletion(result))),
      );
    }
    for (const translator of translators) {
      const verb = translator.translates ? 'translate' : 'build';
      benchmark(
        `${verb}: ${translator.provider} response (${translator.responseParser} + encode + stringify)`,
        () => do_not_optimize(JSON.stringify(encodeChatCompletion(translator.parseResponse(translator.responseBody)))),
        translator.translates ? 'translation' : undefined,
      );
    }
  });
}
