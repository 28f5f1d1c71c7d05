// A display name (an account's, a team's, a gateway key's label): shown in the dashboard, exports and
// alert text, so one that shows nothing (spaces, invisible characters) or breaks the line it is shown on
// (NUL, a line end, ESC, a bidi override, a lone surrogate) is refused, as an empty one is (QA19 teams
// L1, QA20). Spaces around it are trimmed.

import { FormatRegistry, Type, type TString } from '@sinclair/typebox';
import { hasControlCharacter } from '../wire/request-validation.ts';

const DISPLAY_NAME = 'keyway-display-name';
// Shows nothing: spaces, format characters, what Unicode says renderers ignore (the Hangul fillers, the
// combining grapheme joiner, variation selectors), marks with no letter to sit on, the braille blank (QA20).
const INVISIBLE_ONLY = /^[\s\p{Cf}\p{Default_Ignorable_Code_Point}\p{M}\u2800]*$/u;
// Bidi embeddings, overrides and isolates reorder the rest of the line the name is shown on (QA20).
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;

function isDisplayName(name: string): boolean {
  return name.isWellFormed() && !INVISIBLE_ONLY.test(name) && !hasControlCharacter(name) && !BIDI_CONTROL.test(name);
}

if (!FormatRegistry.Has(DISPLAY_NAME)) FormatRegistry.Set(DISPLAY_NAME, isDisplayName);

/** The schema of a display name of at most 200 characters, described by `what`. */
export function displayNameSchema(what: string): TString {
  return Type.String({
    minLength: 1,
    maxLength: 200,
    format: DISPLAY_NAME,
    description: `${what}: not blank, no control characters; spaces around it are trimmed`,
    errorMessage: { format: 'must be a name: not blank, without control characters (line ends, tabs, NUL, ESC, bidi overrides)' },
  });
}

/** The name as stored: without the spaces around it. */
export function displayName(name: string): string {
  return name.trim();
}
