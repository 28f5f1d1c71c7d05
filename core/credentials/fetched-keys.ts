// Key material a key source answers is held to the rule every hand-entered key meets
// (core/spec/key-material.ts): printable ASCII without spaces. Every loaded key source is wrapped
// once, where the plugin registry takes it, so each answer of `fetch` and `mint` is checked before it
// becomes a key: a reference added (400 naming `key_reference`), a reference resolved at use (that
// key's attempt fails, as any source failure does) and a scheduled rotation (it fails, nothing is
// switched). Trailing line ends are dropped first: files and command output usually end with one,
// and no provider key ends with a CR or LF. Messages say what kind of character broke the rule,
// never the key or any part of it. See docs/key-lifecycle.md, "Key sources".

import { isKeyMaterial, KEY_MATERIAL_RULE } from '../spec/key-material.ts';
import type { FetchedKey, KeyReference, KeySource, KeySourceContext } from '../spec/key-source.ts';

const TRAILING_LINE_ENDS = /[\r\n]+$/;

/** The first kind of character that breaks the rule, in words; undefined when none does. */
export function offendingCharacterKind(text: string): string | undefined {
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    if (code >= 0x21 && code <= 0x7e) continue;
    if (code === 0xfeff) return 'a byte order mark';
    if (/\s/.test(character)) return 'a space, tab or line break';
    if (code < 0x20 || code === 0x7f) return 'a control character';
    return 'a character beyond ASCII';
  }
  return undefined;
}

/** A key as a source answered it, without trailing line ends, or an error saying why it cannot be one. */
export function checkFetchedKey(fetched: FetchedKey): FetchedKey {
  if (typeof fetched?.apiKey !== 'string') throw new Error('the source answered no key');
  const apiKey = fetched.apiKey.replace(TRAILING_LINE_ENDS, '');
  if (apiKey === '') throw new Error('the source answered an empty key');
  if (!isKeyMaterial(apiKey))
    throw new Error(`the key it answered ${KEY_MATERIAL_RULE} (it holds ${offendingCharacterKind(apiKey) ?? 'a character outside the rule'})`);
  return apiKey === fetched.apiKey ? fetched : { ...fetched, apiKey };
}

type Answer = (reference: KeyReference, context: KeySourceContext) => Promise<FetchedKey>;

function checkedAnswer(answer: Answer): Answer {
  return async (reference, context) => checkFetchedKey(await answer(reference, context));
}

/** The source, with every key it answers (fetch and mint) checked; validate and revoke unchanged. */
export function checkedKeySource(source: KeySource): KeySource {
  const checked: KeySource = {
    name: source.name,
    validate: (reference, context) => source.validate(reference, context),
    fetch: checkedAnswer((reference, context) => source.fetch(reference, context)),
  };
  const { mint, revoke } = source;
  if (mint !== undefined) checked.mint = checkedAnswer((reference, context) => mint.call(source, reference, context));
  if (revoke !== undefined) checked.revoke = (reference, version, context) => revoke.call(source, reference, version, context);
  return checked;
}
