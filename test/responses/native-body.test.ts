// The body OpenAI's own Responses API gets: replayed reasoning keeps its encrypted content and loses its
// summary, a display copy the content scan never reads (the translation it scans has no reasoning).

import { expect, test } from 'bun:test';
import { nativeBodyOf } from '../../plugins/responses/native.ts';

test('a replayed reasoning item is sent with its encrypted content and an empty summary; one without encrypted content is dropped', () => {
  const reasoning = {
    type: 'reasoning',
    id: 'rs_1',
    encrypted_content: 'gAAAAB-opaque',
    summary: [{ type: 'summary_text', text: 'card 4111 1111 1111 1111' }],
  };
  const bare = { type: 'reasoning', id: 'rs_2', summary: [{ type: 'summary_text', text: 'a translated summary' }] };
  const user = { type: 'message', role: 'user', content: 'go on' };
  const body = nativeBodyOf({ model: 'gpt-4o-mini', input: [reasoning, bare, user] }, [], [reasoning, bare, user]);
  expect(body.input).toEqual([{ type: 'reasoning', id: 'rs_1', encrypted_content: 'gAAAAB-opaque', summary: [] }, user]);
  expect(JSON.stringify(body)).not.toContain('4111');
  // The client's own item is left as it was.
  expect(reasoning.summary).toHaveLength(1);
});
