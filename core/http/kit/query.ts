// Query parameters of the management reads. A misspelt one (`groupby=team`) used to be ignored, so a
// finance script got an ungrouped answer with a 200; bodies refuse unknown fields, and so do queries.
// A parameter given twice (`type=admin&type=request`, `limit=1&limit=500`) used to be read as its
// first value, the rest dropped without a word: it is refused too, unless the endpoint takes a list
// that way (`group_by=provider&group_by=model`).

import { KeywayError } from '../../errors.ts';
import { redactedExcerpt } from '../../logger.ts';

/** What a query parameter is called in an error: never more than a short, scrubbed name. */
const MAX_SHOWN_NAME = 64;

/**
 * Refuses the first parameter of `query` that is not in `known`: 400 `invalid_field` naming it and
 * listing the known ones; then the first known one given more than once that is not in `repeatable`:
 * 400 `invalid_request` naming it.
 */
export function refuseUnknownParameters(query: URLSearchParams, known: readonly string[], repeatable: readonly string[] = []): void {
  let seen: Set<string> | undefined;
  for (const name of query.keys()) {
    if (!known.includes(name)) {
      const param = redactedExcerpt(name, MAX_SHOWN_NAME);
      const takes = known.length === 0 ? 'it takes none' : `it takes: ${known.join(', ')}`;
      throw new KeywayError('invalid_field', { param, detail: `is not a query parameter of this endpoint; ${takes}` }, { param });
    }
    seen ??= new Set();
    if (seen.has(name) && !repeatable.includes(name)) {
      const times = query.getAll(name).length;
      throw new KeywayError(
        'invalid_request',
        { detail: `The query parameter '${name}' is given ${times} times; this endpoint takes one value for it.` },
        { param: name },
      );
    }
    seen.add(name);
  }
}

/** The parameters every endpoint that reads a period takes (core/http/kit/period.ts). */
export const PERIOD_PARAMETERS = ['period', 'start', 'end'] as const;
