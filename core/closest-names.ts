// "Did you mean" suggestions: the known names closest to one that was not found (a model, a setting).
// Its own module, without the model catalog, so the configuration can use it before anything loads.

/** Levenshtein distance, for "did you mean" suggestions on unknown names. */
export function editDistance(left: string, right: string): number {
  const previous = Array.from({ length: right.length + 1 }, (_unused, index) => index);
  for (let row = 1; row <= left.length; row++) {
    let diagonal = previous[0] as number;
    previous[0] = row;
    for (let column = 1; column <= right.length; column++) {
      const above = previous[column] as number;
      const cost = left[row - 1] === right[column - 1] ? 0 : 1;
      previous[column] = Math.min(above + 1, (previous[column - 1] as number) + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return previous[right.length] as number;
}

/** Up to `limit` candidates near `name`, nearest first; none when nothing is near. */
export function closestNames(name: string, candidates: Iterable<string>, limit = 5): string[] {
  const scored: Array<{ candidate: string; distance: number }> = [];
  const seen = new Set<string>();
  for (const candidate of candidates) {
    if (seen.has(candidate)) continue;
    seen.add(candidate);
    const distance = candidate.includes(name) || name.includes(candidate) ? Math.abs(candidate.length - name.length) * 0.5 : editDistance(name, candidate);
    if (distance <= Math.max(3, name.length / 3)) scored.push({ candidate, distance });
  }
  scored.sort((left, right) => left.distance - right.distance || left.candidate.localeCompare(right.candidate));
  return scored.slice(0, limit).map((entry) => entry.candidate);
}
