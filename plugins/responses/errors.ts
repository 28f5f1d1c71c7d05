// The Responses API's error body: OpenAI's one error shape, naming the fields the client sent. A
// translated request is refused by Keyway's chat checks or a provider adapter in chat's words
// (`reasoning_effort`, `max_completion_tokens`), fields the client never sent (QA20).

import { openAIErrorBody } from '../../core/errors.ts';
import type { ErrorDescriptor } from '../../core/spec/vocabulary.ts';

/** Chat fields the translation fills from a Responses field of another name (request.ts), longest first. */
const RESPONSES_FIELD_BY_CHAT_FIELD: ReadonlyArray<readonly [string, string]> = [
  ['response_format.json_schema', 'text.format'],
  ['response_format', 'text.format'],
  ['max_completion_tokens', 'max_output_tokens'],
  ['reasoning_effort', 'reasoning.effort'],
  ['verbosity', 'text.verbosity'],
];

function clientField(chatField: string): string | undefined {
  for (const [chat, responses] of RESPONSES_FIELD_BY_CHAT_FIELD) {
    if (chatField === chat) return responses;
    if (chatField.startsWith(`${chat}.`)) return `${responses}${chatField.slice(chat.length)}`;
  }
  return undefined;
}

export function responsesErrorBody(descriptor: ErrorDescriptor): { error: Record<string, unknown> } {
  const chatField = descriptor.param;
  const renamed = typeof chatField === 'string' ? clientField(chatField) : undefined;
  if (chatField === undefined || chatField === null || renamed === undefined) return openAIErrorBody(descriptor);
  return openAIErrorBody({ ...descriptor, param: renamed, message: descriptor.message.replaceAll(`'${chatField}'`, `'${renamed}'`) });
}
