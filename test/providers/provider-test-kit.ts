// What provider unit tests share: fixture loading, chunked streams, collecting parts, credentials,
// call contexts and a recording fetch.

import type { CallContext, ProviderCredential, ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest, StreamPart } from '../../core/spec/vocabulary.ts';

export function fixtureReader(provider: string) {
  const folder = new URL(`../fixtures/${provider}/`, import.meta.url);
  const text = (name: string): Promise<string> => Bun.file(new URL(name, folder)).text();
  const json = async <T>(name: string): Promise<T> => JSON.parse(await text(name)) as T;
  return { text, json };
}

/** Delivers text in small pieces so events straddle chunk boundaries, as on a real socket. */
export function streamOf(text: string, pieceSize = 13): ReadableStream<Uint8Array> {
  return bytesInPieces(new TextEncoder().encode(text), pieceSize);
}

/** A body that arrives in pieces of `pieceSize` bytes, so events (and UTF-8 sequences) straddle reads. */
export function bytesInPieces(bytes: Uint8Array, pieceSize: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + pieceSize));
      offset += pieceSize;
    },
  });
}

export async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const collected: StreamPart[] = [];
  for await (const part of parts) collected.push(part);
  return collected;
}

export function credentialFor(provider: string, keyId: string, defaultApiKey: string) {
  return (settings: ProviderKeySettings = {}, apiKey = defaultApiKey): ProviderCredential => ({
    id: keyId,
    provider,
    owner: 'account',
    accountId: 'default',
    organizationId: undefined,
    settings,
    status: 'active',
    weight: 1,
    apiKey,
  });
}

export function callContextFor(credential: (settings?: ProviderKeySettings, apiKey?: string) => ProviderCredential) {
  return (model: string, settings: ProviderKeySettings = {}, apiKey?: string): CallContext => ({
    requestId: 'req_test',
    credential: credential(settings, apiKey),
    model,
    signal: new AbortController().signal,
    warnings: [],
    upstream: {},
  });
}

export interface RecordedCall {
  url: string;
  method: string;
  headers: Headers;
  body: unknown;
}

/** A fetch that records each call and answers from `respond`. */
export function fakeFetch(respond: (call: RecordedCall, position: number) => Response): { fetch: typeof fetch; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const implementation = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const text = typeof init?.body === 'string' ? init.body : undefined;
    const call: RecordedCall = {
      url: String(input),
      method: init?.method ?? 'GET',
      headers: new Headers(init?.headers),
      body: text === undefined ? undefined : JSON.parse(text),
    };
    calls.push(call);
    return respond(call, calls.length - 1);
  };
  return { fetch: implementation as typeof fetch, calls };
}

/** A request-translation fixture case: the OpenAI request in, the native body and warnings out. */
export interface RequestCase {
  name: string;
  settings?: ProviderKeySettings;
  request: ChatRequest;
  expected: Record<string, unknown>;
  warnings: string[];
}

/** An error-classification fixture case: the provider's answer in, Keyway's classification out. */
export interface ErrorCase {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  reason: string;
  code: string;
  message?: string;
  retryAfterSeconds?: number;
}

/** Fixtures, a credential and call contexts for one provider's tests. */
export function providerTestKit(provider: string, keyId: string, apiKey: string) {
  const fixtures = fixtureReader(provider);
  const credential = credentialFor(provider, keyId, apiKey);
  return { fixtureText: fixtures.text, fixtureJson: fixtures.json, credential, callContext: callContextFor(credential) };
}
