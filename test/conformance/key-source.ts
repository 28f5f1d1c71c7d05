// The key-source conformance suite: what every KeySource (core/spec/key-source.ts) must do, whether
// it reads an environment variable or mints keys through a provider's admin API. Call it from your
// own test file with a factory that returns a ready source and what it should answer:
//
//   describeKeySourceConformance('my-source', async () => ({ source, valid, expected, invalid, missing, context, canaries }));
//
// The suite only uses the contract. Sources that cannot read a key back (they only mint) leave
// `expected` undefined: their fetch must reject, cleanly.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { KeyReference, KeySource, KeySourceContext } from '../../core/spec/key-source.ts';

export interface KeySourceFixture {
  source: KeySource;
  /** A reference the source accepts (and, for a reading source, resolves to `expected`). */
  valid: KeyReference;
  /** The key `valid` names; undefined for a source that only mints. */
  expected?: string;
  /** References `validate` must refuse (and `fetch` must never resolve). */
  invalid: KeyReference[];
  /** A reference that validates but names nothing: `fetch` must reject. */
  missing?: KeyReference;
  /**
   * For a source whose references name things of several accounts (files, variables, secret paths):
   * two references outside `context`'s account's scope, one naming another account's key that exists,
   * one naming nothing. Both must be refused, by `validate` with the context and by `fetch`, with one
   * answer but for the locator: what exists outside the account's scope must not show through.
   */
  foreign?: { existing: KeyReference; absent: KeyReference };
  context: KeySourceContext;
  /** Values that must never appear in a message: the key, tokens, admin keys. */
  canaries: string[];
  /** For sources that mint: whether a key is live at the provider (to check mint and revoke). */
  isLive?(apiKey: string): boolean;
  cleanup?(): Promise<void> | void;
}

export type CreateKeySourceFixture = () => Promise<KeySourceFixture>;

function expectClean(message: string, canaries: readonly string[]): void {
  expect(message.length).toBeGreaterThan(0);
  for (const canary of canaries) expect(message.includes(canary)).toBe(false);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }
  throw new Error('expected a rejection, but the source answered a key');
}

export function describeKeySourceConformance(name: string, create: CreateKeySourceFixture): void {
  describe(`key-source conformance: ${name}`, () => {
    let fixture: KeySourceFixture;
    beforeAll(async () => {
      fixture = await create();
    });
    afterAll(async () => {
      await fixture?.cleanup?.();
    });

    test('has a plain name (what references and the API use)', () => {
      expect(fixture.source.name).toMatch(/^[a-z][a-z0-9-]{0,63}$/);
    });

    test('accepts its valid reference', () => {
      expect(fixture.source.validate(fixture.valid)).toBeUndefined();
    });

    test('refuses each invalid reference with a message that holds no secret', async () => {
      expect(fixture.invalid.length).toBeGreaterThan(0);
      for (const reference of fixture.invalid) {
        const problem = fixture.source.validate(reference);
        expect(typeof problem).toBe('string');
        expectClean(problem as string, fixture.canaries);
        const error = await rejection(fixture.source.fetch(reference, fixture.context));
        expectClean(error.message, fixture.canaries);
      }
    });

    test('validate never throws, whatever the reference holds', () => {
      const junk = [
        { source: name, locator: '' },
        { source: name, locator: 'x'.repeat(5000) },
        { source: name, locator: '../../../etc/passwd' },
        { source: name, locator: 'a', options: { unexpected: { nested: [1, 2] } } },
        { source: name, locator: 42 as unknown as string },
        { source: name, locator: 'a', options: null as unknown as Record<string, unknown> },
      ];
      for (const reference of junk) expect(() => fixture.source.validate(reference)).not.toThrow();
    });

    test('fetch answers the named key, trimmed, the same each time (or, for a mint-only source, refuses cleanly)', async () => {
      if (fixture.expected === undefined) {
        const error = await rejection(fixture.source.fetch(fixture.valid, fixture.context));
        expectClean(error.message, fixture.canaries);
        return;
      }
      const results = await Promise.all([1, 2, 3].map(() => fixture.source.fetch(fixture.valid, fixture.context)));
      for (const result of results) {
        expect(result.apiKey).toBe(fixture.expected);
        if (result.version !== undefined) expect(typeof result.version).toBe('string');
      }
    });

    test('fetch of a reference that names nothing rejects without a secret in the message', async () => {
      if (fixture.missing === undefined) return;
      expect(fixture.source.validate(fixture.missing)).toBeUndefined();
      const error = await rejection(fixture.source.fetch(fixture.missing, fixture.context));
      expectClean(error.message, fixture.canaries);
    });

    test("another account's reference is refused, whether or not what it names exists (sources that scope by account)", async () => {
      if (fixture.foreign === undefined) return;
      const { existing, absent } = fixture.foreign;
      const answer = (reference: KeyReference, message: string | undefined): string => {
        expect(typeof message).toBe('string');
        expectClean(message as string, fixture.canaries);
        return (message as string).replaceAll(reference.locator, '<locator>');
      };
      // Well-formed: the refusal is the account's scope, never the reference's shape.
      expect(fixture.source.validate(existing)).toBeUndefined();
      expect(fixture.source.validate(absent)).toBeUndefined();
      const validated = [
        answer(existing, fixture.source.validate(existing, fixture.context)),
        answer(absent, fixture.source.validate(absent, fixture.context)),
      ];
      expect(validated[0]).toBe(validated[1] as string);
      const fetched = [
        answer(existing, (await rejection(fixture.source.fetch(existing, fixture.context))).message),
        answer(absent, (await rejection(fixture.source.fetch(absent, fixture.context))).message),
      ];
      expect(fetched[0]).toBe(fetched[1] as string);
      if (fixture.source.mint !== undefined) {
        const minted = [
          answer(existing, (await rejection(fixture.source.mint(existing, fixture.context))).message),
          answer(absent, (await rejection(fixture.source.mint(absent, fixture.context))).message),
        ];
        expect(minted[0]).toBe(minted[1] as string);
      }
    });

    test('validate with the context accepts the valid reference, and never throws', () => {
      expect(fixture.source.validate(fixture.valid, fixture.context)).toBeUndefined();
      expect(() => fixture.source.validate({ source: name, locator: 42 as unknown as string }, fixture.context)).not.toThrow();
      expect(() => fixture.source.validate({ source: name, locator: '../x' }, { accountId: null, provider: 'openai' })).not.toThrow();
    });

    test('mint answers a fresh live key and revoke retires it (sources that mint)', async () => {
      const { mint, revoke } = fixture.source;
      if (mint === undefined) {
        expect(revoke).toBeUndefined();
        return;
      }
      const first = await mint.call(fixture.source, fixture.valid, fixture.context);
      const second = await mint.call(fixture.source, fixture.valid, fixture.context);
      expect(first.apiKey.length).toBeGreaterThan(8);
      expect(second.apiKey).not.toBe(first.apiKey);
      expect(typeof first.version).toBe('string');
      if (fixture.isLive !== undefined) expect(fixture.isLive(first.apiKey)).toBe(true);
      if (revoke !== undefined) {
        await revoke.call(fixture.source, fixture.valid, first.version as string, fixture.context);
        if (fixture.isLive !== undefined) {
          expect(fixture.isLive(first.apiKey)).toBe(false);
          expect(fixture.isLive(second.apiKey)).toBe(true);
        }
        const error = await rejection(revoke.call(fixture.source, fixture.valid, first.version as string, fixture.context));
        expectClean(error.message, [...fixture.canaries, first.apiKey, second.apiKey]);
      }
    });
  });
}
