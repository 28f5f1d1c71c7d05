// A display name (an account's, a team's, a gateway key's label): shown in the dashboard, exports and
// alert text, so one that shows nothing (spaces, invisible characters) or breaks the line it is shown on
// (NUL, a line end, ESC) is refused, as an empty one is (QA19 teams L1). Spaces around it are trimmed.

import { FormatRegistry, Type, type TString } from '@sinclair/typebox';
import { hasControlCharacter } from '../wire/request-validation.ts';

const DISPLAY_NAME = 'keyway-display-name';
const INVISIBLE_ONLY = /^[\s\p{Cf}]*$/u;
if (!FormatRegistry.Has(DISPLAY_NAME)) FormatRegistry.Set(DISPLAY_NAME, (name) => !INVISIBLE_ONLY.test(name) && !hasControlCharacter(name));

/** The schema of a display name of at most 200 characters, described by `what`. */
export function displayNameSchema(what: string): TString {
  return Type.String({
    minLength: 1,
    maxLength: 200,
    format: DISPLAY_NAME,
    description: `${what}: not blank, no control characters; spaces around it are trimmed`,
    errorMessage: { format: 'must be a name: not blank, without control characters (line ends, tabs, NUL, ESC)' },
  });
}

/** The name as stored: without the spaces around it. */
export function displayName(name: string): string {
  return name.trim();
}
