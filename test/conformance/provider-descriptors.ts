// One descriptor per provider plugin: how to start its simulator, which model and key to use, how to
// read its native answers, where its translated requests keep images and tool results, and which
// conformance scenarios apply to it.

import type { SimulatorHandle } from '../simulators/common.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { readAnthropicAnswer, readCohereAnswer, readGeminiAnswer, readOpenAIAnswer, type JsonObject, type NativeReader } from './native-answers.ts';

export interface ProviderDescriptor {
  /** The provider plugin's name: the key name for POST /v1/providers/keys and X-Provider-Used. */
  name: string;
  /** A bare model name that selects this provider. */
  model: string;
  apiKey: string;
  startSimulator(apiKey: string): SimulatorHandle;
  /** The gateway environment pointing this provider at its simulator. */
  environment(simulator: SimulatorHandle): Record<string, string>;
  readNative: NativeReader;
  /** Whether the simulator answers tool calls (Perplexity's never does). */
  tools: boolean;
  /** How a tool result names the call it answers in the native request: by id, or by function name (Gemini). */
  toolResultLinks?(body: JsonObject): string[];
  toolResultLinkedBy?: 'id' | 'name';
  /** The first image of the first user turn in the native request, and what it should be for a URL. */
  nativeImage(body: JsonObject): unknown;
  expectedNativeImage(url: string, mediaType: string): unknown;
  httpImages: boolean;
  /**
   * `response_format: json_object`: `native` when the provider has a JSON switch, `translated` when
   * the adapter reshapes it (with a warning), `emulated` when only an instruction can ask for it.
   */
  jsonObject: 'native' | 'translated' | 'emulated';
  /**
   * Request fields this provider cannot take, refused with a 400: by the adapter itself where it has
   * such a refusal (no upstream call), else by the provider.
   */
  unservable: JsonObject;
}

/** A tool result that answers no earlier tool call. */
const ORPHAN_TOOL_RESULT = {
  messages: [
    { role: 'tool', tool_call_id: 'call_orphan', content: '21C' },
    { role: 'user', content: 'Well?' },
  ],
};

function objectAt(value: unknown): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : {};
}

function listAt(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.map(objectAt) : [];
}

/** OpenAI-shaped messages (OpenAI, Cohere, Perplexity): the first image_url part of a user turn. */
function openAIStyleImage(body: JsonObject): unknown {
  for (const message of listAt(body.messages)) {
    if (message.role !== 'user') continue;
    const image = listAt(message.content).find((part) => part.type === 'image_url');
    if (image !== undefined) return image;
  }
  return undefined;
}

function openAIStyleToolLinks(body: JsonObject): string[] {
  return listAt(body.messages)
    .filter((message) => message.role === 'tool')
    .map((message) => String(message.tool_call_id));
}

const imageUrlPart = (url: string): unknown => ({ type: 'image_url', image_url: { url } });

function dataOf(url: string): string {
  return url.slice(url.indexOf(',') + 1);
}

export const openAIDescriptor: ProviderDescriptor = {
  name: 'openai',
  model: 'gpt-4o-mini',
  apiKey: 'sk-proj-ConformanceOpenAIKey00000000000001',
  startSimulator: (apiKey) => startOpenAISimulator({ apiKeys: [apiKey] }),
  environment: (simulator) => ({ KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` }),
  readNative: readOpenAIAnswer,
  tools: true,
  toolResultLinks: openAIStyleToolLinks,
  toolResultLinkedBy: 'id',
  nativeImage: openAIStyleImage,
  expectedNativeImage: imageUrlPart,
  httpImages: true,
  jsonObject: 'native',
  // A pass-through adapter refuses nothing itself; the provider does.
  unservable: ORPHAN_TOOL_RESULT,
};

export const anthropicDescriptor: ProviderDescriptor = {
  name: 'anthropic',
  model: 'claude-3-opus-20240229',
  apiKey: 'sk-ant-api03-ConformanceAnthropicKey0000001',
  startSimulator: (apiKey) => startAnthropicSimulator({ apiKeys: [apiKey] }),
  environment: (simulator) => ({ KEYWAY_ANTHROPIC_BASE_URL: simulator.url }),
  readNative: readAnthropicAnswer,
  tools: true,
  toolResultLinks: (body) =>
    listAt(body.messages)
      .flatMap((message) => listAt(message.content))
      .filter((block) => block.type === 'tool_result')
      .map((block) => String(block.tool_use_id)),
  toolResultLinkedBy: 'id',
  nativeImage: (body) => listAt(listAt(body.messages)[0]?.content).find((block) => block.type === 'image'),
  expectedNativeImage: (url, mediaType) =>
    url.startsWith('data:')
      ? { type: 'image', source: { type: 'base64', media_type: mediaType, data: dataOf(url) } }
      : { type: 'image', source: { type: 'url', url } },
  httpImages: true,
  // Anthropic has no JSON switch; only json_schema maps natively (output_config.format).
  jsonObject: 'emulated',
  unservable: { n: 2 },
};

export const googleDescriptor: ProviderDescriptor = {
  name: 'google',
  model: 'gemini-pro',
  apiKey: 'AIzaSyConformanceGoogleKey000000000000001',
  startSimulator: (apiKey) => startGoogleSimulator({ apiKeys: [apiKey] }),
  environment: (simulator) => ({ KEYWAY_GOOGLE_BASE_URL: simulator.url }),
  readNative: readGeminiAnswer,
  tools: true,
  toolResultLinks: (body) =>
    listAt(body.contents)
      .flatMap((content) => listAt(content.parts))
      .filter((part) => part.functionResponse !== undefined)
      .map((part) => String(objectAt(part.functionResponse).name)),
  toolResultLinkedBy: 'name',
  nativeImage: (body) => listAt(listAt(body.contents)[0]?.parts).find((part) => part.inlineData !== undefined || part.fileData !== undefined),
  expectedNativeImage: (url, mediaType) =>
    url.startsWith('data:') ? { inlineData: { mimeType: mediaType, data: dataOf(url) } } : { fileData: { mimeType: mediaType, fileUri: url } },
  httpImages: true,
  jsonObject: 'native',
  // Gemini's functionResponse needs the function name, which only the earlier call can give.
  unservable: ORPHAN_TOOL_RESULT,
};

export const cohereDescriptor: ProviderDescriptor = {
  name: 'cohere',
  model: 'command-r-plus',
  apiKey: 'co-ConformanceCohereKey000000000000000001',
  startSimulator: (apiKey) => startCohereSimulator({ apiKeys: [apiKey] }),
  environment: (simulator) => ({ KEYWAY_COHERE_BASE_URL: simulator.url }),
  readNative: readCohereAnswer,
  tools: true,
  toolResultLinks: openAIStyleToolLinks,
  toolResultLinkedBy: 'id',
  nativeImage: openAIStyleImage,
  expectedNativeImage: imageUrlPart,
  httpImages: true,
  jsonObject: 'native',
  unservable: { n: 2 },
};

export const perplexityDescriptor: ProviderDescriptor = {
  name: 'perplexity',
  model: 'sonar',
  apiKey: 'pplx-ConformancePerplexityKey000000000001',
  startSimulator: (apiKey) => startPerplexitySimulator({ apiKeys: [apiKey] }),
  environment: (simulator) => ({ KEYWAY_PERPLEXITY_BASE_URL: simulator.url }),
  readNative: readOpenAIAnswer,
  // The Sonar simulator never calls tools, as Sonar chat models do not.
  tools: false,
  nativeImage: openAIStyleImage,
  expectedNativeImage: imageUrlPart,
  httpImages: true,
  // Sonar refuses json_object; the adapter sends a json_schema for any object instead.
  jsonObject: 'translated',
  unservable: { tools: [{ type: 'function', function: { name: 'lookup' } }], tool_choice: { type: 'function', function: { name: 'missing' } } },
};

export const PROVIDER_DESCRIPTORS: readonly ProviderDescriptor[] = [
  openAIDescriptor,
  anthropicDescriptor,
  googleDescriptor,
  cohereDescriptor,
  perplexityDescriptor,
];
