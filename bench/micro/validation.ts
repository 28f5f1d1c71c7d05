import { do_not_optimize, group } from 'mitata';
import { validateChatRequest } from '../../core/wire/request-validation.ts';
import { typicalChatRequest } from './fixtures/chat-request.ts';
import { benchmark } from './registry.ts';

/** The shape check every chat request gets; with JSON.parse for the body-read cost next to it. */
export function registerValidationBenches(): void {
  const request = typicalChatRequest('gpt-4o');
  const text = JSON.stringify(request);

  group('request validation', () => {
    benchmark(`validate: validateChatRequest (${text.length} B)`, () => do_not_optimize(validateChatRequest(request)));
    benchmark(`validate: JSON.parse + validateChatRequest (${text.length} B)`, () => do_not_optimize(validateChatRequest(JSON.parse(text))));
  });
}
