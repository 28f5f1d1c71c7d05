// The plugins' model filters as one predicate: what `GET /v1/models` lists, and the models a request
// for a model class may be sent to.

import type { ModelFilter, ModelListCaller, ModelPredicate } from '../spec/plugin.ts';

/** Every filter's predicate must accept; undefined when no filter narrows anything for this caller. */
export function modelPredicate(filters: ReadonlyArray<{ value: ModelFilter }>, caller: ModelListCaller): ModelPredicate | undefined {
  const predicates: ModelPredicate[] = [];
  for (const { value: filter } of filters) {
    const predicate = filter(caller);
    if (predicate !== undefined) predicates.push(predicate);
  }
  if (predicates.length <= 1) return predicates[0];
  return (provider, model) => predicates.every((predicate) => predicate(provider, model));
}
