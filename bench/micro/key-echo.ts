// The check of every answer for the provider key its upstream was called with
// (core/credentials/key-echo.ts, QA15 F3): what it adds to a 1 KB answer without the key (the ordinary
// case: a native search for the key's rarest character, no copy) and to a stream frame; for scale, the
// rare answer that holds it, a search for the whole key, and serialising the same answer again. Each
// bench cycles through 64 different answers, so no result can be reused between calls.
// Run alone: bun bench/key-echo.ts (or bun bench/micro.ts 'key echo').

import { do_not_optimize, group } from 'mitata';
import { KeySearch, StreamKeyFilter } from '../../core/credentials/key-echo.ts';
import { benchmark } from './registry.ts';

const KEY = 'sk-proj-Zq7fK2mR9wXc4vB8nL1pT6yH3jD5sG0aAbCdEfGhIjKlMnOp';
const VARIANTS = 64;
const textEncoder = new TextEncoder();

/** A chat.completion of `size` bytes whose text has many of the key's first characters (`s`, `sk`), none of the key. */
function answerObject(variant: number, size: number): Record<string, unknown> {
  const message = { role: 'assistant', content: '' };
  const answer = {
    id: `chatcmpl-${variant}`,
    object: 'chat.completion',
    created: 1_700_000_000 + variant,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: `fp_44709d6f${variant}`,
    choices: [{ index: 0, message, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 52, completion_tokens: 180, total_tokens: 232 },
  };
  const room = size - JSON.stringify(answer).length;
  while (message.content.length < room) message.content += `Summary ${variant}: skills, sketches and sky-high risks; see sk-docs. `;
  message.content = message.content.slice(0, room);
  return answer;
}

export function registerKeyEchoBenches(): void {
  const objects = Array.from({ length: VARIANTS }, (_, variant) => answerObject(variant, 1024));
  const texts = objects.map((object) => JSON.stringify(object));
  const withKey = texts.map((text) => text.replace('fp_44709d6f', `fp_${KEY}`));
  const frames = texts.map((text) => textEncoder.encode(`data: ${text}\n\n`));
  const deltaFrames = Array.from({ length: VARIANTS }, (_, variant) =>
    textEncoder.encode(
      `data: {"id":"chatcmpl-${variant}","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" sketch ${variant}"},"finish_reason":null}]}\n\n`,
    ),
  );
  if (texts.some((text) => text.length !== 1024 || text.includes(KEY))) throw new Error('the answers must be 1,024 bytes and hold no key');
  const search = new KeySearch(KEY);
  const filter = new StreamKeyFilter(search);
  let next = 0;
  const pick = () => next++ & (VARIANTS - 1);

  group('key echo (per answer or frame)', () => {
    benchmark('key echo: 1 KB answer text without the key', () => do_not_optimize(search.redact(texts[pick()] as string)));
    benchmark('key echo: 1 KB answer text holding the key (replaced)', () => do_not_optimize(search.redact(withKey[pick()] as string)));
    benchmark('key echo: 1 KB stream frame (bytes) without the key', () => do_not_optimize(filter.chunk(frames[pick()] as Uint8Array)));
    benchmark('key echo: 190 B content-delta frame without the key', () => do_not_optimize(filter.chunk(deltaFrames[pick()] as Uint8Array)));
    benchmark('for scale: String.includes of the whole key, 1 KB', () => do_not_optimize((texts[pick()] as string).includes(KEY)));
    benchmark('for scale: JSON.stringify of the same 1 KB answer', () => do_not_optimize(JSON.stringify(objects[pick()])));
  });
}
