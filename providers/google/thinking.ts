// Reasoning requests → Gemini's `thinkingConfig`: OpenAI's `reasoning_effort`, and Anthropic's
// `thinking` object (`{type: 'enabled', budget_tokens}`, `disabled`, `adaptive`), which an Anthropic
// client on /v1/messages sends (QA15 F3). Gemini 3 takes levels, Gemini 2.5 token budgets; models
// before 2.5 do not think. `includeThoughts` is set when the client asked to see the reasoning
// (thoughtsWanted): Gemini bills its thoughts either way, and without it returns none of their text.

import { REASONING_WANTED, type ChatRequest } from '../../core/spec/vocabulary.ts';

type ThinkingConfig = Record<string, unknown>;

interface GeminiThinking {
  major: number;
  minor: number;
  isPro: boolean;
  isLite: boolean;
}

function generationOf(model: string): GeminiThinking {
  const version = /^(?:models\/)?gemini-(\d+)(?:\.(\d+))?/.exec(model);
  return { major: Number(version?.[1] ?? 0), minor: Number(version?.[2] ?? 0), isPro: /-pro/.test(model), isLite: /-lite/.test(model) };
}

function thinks(generation: GeminiThinking): boolean {
  return generation.major > 2 || (generation.major === 2 && generation.minor >= 5);
}

/** Google's OpenAI-compatible endpoint's table for 2.5 budgets; xhigh (OpenAI's newest) as high. */
const BUDGET_BY_EFFORT: Record<string, number> = { none: 0, minimal: 512, low: 1024, medium: 8192, high: 24576, xhigh: 24576 };
const LEVEL_BY_EFFORT: Record<string, string> = { none: 'MINIMAL', minimal: 'MINIMAL', low: 'LOW', medium: 'MEDIUM', high: 'HIGH', xhigh: 'HIGH' };

/**
 * Gemini 2.5's budget range: Pro 128–32768 (it cannot stop thinking), Flash 0–24576, Flash-Lite 0 or
 * 512–24576. A budget outside is a 400 ("The thinking budget (…) is invalid"), so it is brought in.
 */
function budgetRange(generation: GeminiThinking): { min: number; max: number } {
  if (generation.isPro) return { min: 128, max: 32768 };
  return { min: generation.isLite ? 512 : 1, max: 24576 };
}

/** Pro models cannot stop thinking: `none` asks them for the least they allow. */
function levelFor(effort: string, generation: GeminiThinking): ThinkingConfig {
  if (generation.major >= 3) return { thinkingLevel: effort === 'none' && generation.isPro ? 'LOW' : LEVEL_BY_EFFORT[effort] };
  const budget = BUDGET_BY_EFFORT[effort] as number;
  return { thinkingBudget: budget === 0 && generation.isPro ? budgetRange(generation).min : budget };
}

/** `reasoning_effort` → thinkingConfig; unknown levels and models that do not think: dropped with a warning. */
export function thinkingConfigForEffort(effort: unknown, model: string, warnings: string[]): ThinkingConfig | undefined {
  if (effort === undefined || effort === null) return undefined;
  const level = typeof effort === 'string' ? effort.toLowerCase() : '';
  const generation = generationOf(model);
  if (BUDGET_BY_EFFORT[level] === undefined || !thinks(generation)) {
    warnings.push(`google: reasoning_effort=${JSON.stringify(effort)} is not supported for ${model} and was ignored`);
    return undefined;
  }
  return levelFor(level, generation);
}

/** The effort whose 2.5 budget is nearest `budget`, for Gemini 3's levels. */
function nearestEffort(budget: number): string {
  let nearest = 'minimal';
  for (const effort of ['minimal', 'low', 'medium', 'high'])
    if (Math.abs((BUDGET_BY_EFFORT[effort] as number) - budget) < Math.abs((BUDGET_BY_EFFORT[nearest] as number) - budget)) nearest = effort;
  return nearest;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Anthropic's `thinking` → thinkingConfig. `enabled`: its `budget_tokens` as Gemini 2.5's
 * `thinkingBudget` (brought into the model's range, with a warning when changed), Gemini 3's nearest
 * level; `disabled`: no thinking (Pro models, which cannot stop, the least they allow); `adaptive`:
 * Gemini's default, dynamic thinking. Undefined with a warning for a model that does not think or a
 * shape Gemini has no equivalent for.
 */
export function thinkingConfigForThinking(thinking: unknown, model: string, warnings: string[]): ThinkingConfig | undefined {
  const generation = generationOf(model);
  const type = isRecord(thinking) ? thinking.type : undefined;
  if (!thinks(generation)) {
    if (type !== 'disabled') warnings.push(`google: ignored 'thinking' (${model} does not think)`);
    return undefined;
  }
  if (type === 'adaptive') return undefined;
  if (type === 'disabled') return levelFor('none', generation);
  const budget = isRecord(thinking) ? thinking.budget_tokens : undefined;
  if (type !== 'enabled' || typeof budget !== 'number' || !Number.isInteger(budget) || budget < 1) {
    warnings.push("google: ignored 'thinking' (expected {type: 'enabled', budget_tokens}, 'disabled' or 'adaptive')");
    return undefined;
  }
  if (generation.major >= 3) return { thinkingLevel: LEVEL_BY_EFFORT[nearestEffort(budget)] };
  const { min, max } = budgetRange(generation);
  const sent = Math.min(max, Math.max(min, budget));
  if (sent !== budget) warnings.push(`google: thinking budget_tokens ${budget} is outside ${model}'s range ${min}–${max}; sent ${sent}`);
  return { thinkingBudget: sent };
}

/**
 * Whether the client asked to see the reasoning, as LiteLLM and OpenRouter read it: a dialect that
 * says so itself (the Responses API's `reasoning.summary`, REASONING_WANTED) is believed; Anthropic's
 * `thinking` enabled or adaptive returns thinking blocks unless its `display` is `omitted`; a
 * `reasoning_effort` other than `none` returns the reasoning, as Anthropic's thinking does on chat.
 * `config` is what the request's thinking became: a setting dropped with a warning asks for nothing.
 */
function thoughtsWanted(request: ChatRequest, config: ThinkingConfig | undefined): boolean {
  const { thinking, reasoning_effort: effort } = request;
  if (isRecord(thinking) && (thinking.type === 'disabled' || thinking.display === 'omitted')) return false;
  if (thinking === undefined || thinking === null) {
    if (typeof effort === 'string' && effort.toLowerCase() === 'none') return false;
  }
  const wanted = request[REASONING_WANTED];
  if (typeof wanted === 'boolean') return wanted;
  if (isRecord(thinking)) return thinking.type === 'adaptive' || (thinking.type === 'enabled' && config !== undefined);
  return config !== undefined;
}

/**
 * The request's thinkingConfig: Anthropic's `thinking` object, when the client sent one, wins over
 * `reasoning_effort` (as on Anthropic), and `includeThoughts` joins it when the client asked to see the
 * reasoning of a model that thinks.
 */
export function thinkingConfigFor(request: ChatRequest, model: string, warnings: string[]): ThinkingConfig | undefined {
  const config =
    request.thinking !== undefined && request.thinking !== null
      ? thinkingConfigForThinking(request.thinking, model, warnings)
      : thinkingConfigForEffort(request.reasoning_effort, model, warnings);
  if (!thinks(generationOf(model)) || !thoughtsWanted(request, config)) return config;
  return { ...config, includeThoughts: true };
}
