// Query parameters of the management reads. A misspelt one (`groupby=team`) used to be ignored, so a
// finance script got an ungrouped answer with a 200; bodies refuse unknown fields, and so do queries.

import { KeywayError } from '../../errors.ts';
import { redactedExcerpt } from '../../logger.ts';

/** What a query parameter is called in an error: never more than a short, scrubbed name. */
const MAX_SHOWN_NAME = 64;

/** Refuses the first parameter of `query` that is not in `known`: 400 `invalid_field` naming it and listing the known ones. */
export function refuseUnknownParameters(query: URLSearchParams, known: readonly string[]): void {
  for (const name of query.keys()) {
    if (known.includes(name)) continue;
    const param = redactedExcerpt(name, MAX_SHOWN_NAME);
    const takes = known.length === 0 ? 'it takes none' : `it takes: ${known.join(', ')}`;
    throw new KeywayError('invalid_field', { param, detail: `is not a query parameter of this endpoint; ${takes}` }, { param });
  }
}

/** The parameters every endpoint that reads a period takes (core/http/kit/period.ts). */
export const PERIOD_PARAMETERS = ['period', 'start', 'end'] as const;
