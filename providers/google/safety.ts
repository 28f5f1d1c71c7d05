// The key setting `safety_settings` → Gemini `safetySettings`.

import { Type } from '@sinclair/typebox';

/** Google's own key settings, checked when a key is stored (`POST /v1/providers/keys`). */
export const GOOGLE_KEY_SETTINGS_SCHEMA = Type.Object(
  {
    safety_settings: Type.Optional(
      Type.Union([
        Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('none')]),
        Type.Array(Type.Object({ category: Type.String(), threshold: Type.String() })),
      ]),
    ),
  },
  { additionalProperties: true },
);
//
// A level names how much safety the operator wants, so "high" blocks the most:
//   "high"   → BLOCK_LOW_AND_ABOVE
//   "medium" → BLOCK_MEDIUM_AND_ABOVE
//   "low"    → BLOCK_ONLY_HIGH
//   "none"   → BLOCK_NONE, "off" → OFF (Google's own names, for operators who want the filter gone)
// The threshold is applied to every harm category the Gemini API (not Vertex) knows. An array in the
// setting is Gemini's own shape and is sent as it is.

export const HARM_CATEGORIES = [
  'HARM_CATEGORY_HARASSMENT',
  'HARM_CATEGORY_HATE_SPEECH',
  'HARM_CATEGORY_SEXUALLY_EXPLICIT',
  'HARM_CATEGORY_DANGEROUS_CONTENT',
  'HARM_CATEGORY_CIVIC_INTEGRITY',
] as const;

const THRESHOLD_BY_LEVEL: Record<string, string> = {
  high: 'BLOCK_LOW_AND_ABOVE',
  medium: 'BLOCK_MEDIUM_AND_ABOVE',
  low: 'BLOCK_ONLY_HIGH',
  none: 'BLOCK_NONE',
  off: 'OFF',
};

export interface SafetySetting {
  category: string;
  threshold: string;
}

/** Undefined when the key sets nothing (Gemini's defaults apply) or sets something unreadable (warned). */
export function safetySettingsFrom(setting: unknown, warnings: string[]): SafetySetting[] | undefined {
  if (setting === undefined || setting === null || setting === '') return undefined;
  if (Array.isArray(setting)) return passThrough(setting, warnings);
  if (typeof setting === 'string') {
    const threshold = THRESHOLD_BY_LEVEL[setting.trim().toLowerCase()];
    if (threshold !== undefined) return HARM_CATEGORIES.map((category) => ({ category, threshold }));
  }
  warnings.push(
    `google: the key setting safety_settings=${JSON.stringify(setting)} is not one of low, medium, high, none, off or an array; Gemini's default safety settings apply`,
  );
  return undefined;
}

function passThrough(entries: unknown[], warnings: string[]): SafetySetting[] | undefined {
  const settings = entries.filter(
    (entry): entry is SafetySetting =>
      entry !== null &&
      typeof entry === 'object' &&
      typeof (entry as SafetySetting).category === 'string' &&
      typeof (entry as SafetySetting).threshold === 'string',
  );
  if (settings.length < entries.length) warnings.push('google: safety_settings entries without a string category and threshold were ignored');
  return settings.length > 0 ? settings.map(({ category, threshold }) => ({ category, threshold })) : undefined;
}
