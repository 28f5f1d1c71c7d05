// A small parser for the Prometheus text exposition format 0.0.4, strict enough to catch a malformed
// line: every sample belongs to a family declared by HELP and TYPE before it, names and labels are
// well-formed, values are numbers, and each histogram's buckets are cumulative and end at +Inf = count.
// A family is one group of lines (HELP and TYPE once, then all its samples, none elsewhere) and no
// series appears twice: what Prometheus refuses in a scrape (several workers' texts merged included).

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

export interface Exposition {
  families: Map<string, Family>;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let position = 0;
  while (position < text.length) {
    const equals = text.indexOf('=', position);
    if (equals < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(position, equals);
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name '${name}' in: ${line}`);
    if (text[equals + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let value = '';
    let index = equals + 2;
    for (; index < text.length; index++) {
      const character = text[index] as string;
      if (character === '\\') {
        const next = text[index + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`bad escape in: ${line}`);
        index++;
      } else if (character === '"') break;
      else value += character;
    }
    if (index >= text.length) throw new Error(`unterminated label value in: ${line}`);
    if (name in labels) throw new Error(`label '${name}' twice in: ${line}`);
    labels[name] = value;
    position = index + 1;
    if (text[position] === ',') position++;
    else if (position < text.length) throw new Error(`expected ',' in: ${line}`);
  }
  return labels;
}

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value '${text}' in: ${line}`);
  return Number(text);
}

function familyOf(families: Map<string, Family>, name: string): Family | undefined {
  const direct = families.get(name);
  if (direct !== undefined) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const family = families.get(name.slice(0, -suffix.length));
    if (family?.type === 'histogram') return family;
  }
  return undefined;
}

export function parseExposition(text: string): Exposition {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const seriesSeen = new Set<string>();
  const declared = new Set<string>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const [, kind, name, ...rest] = line.split(' ');
      if (name === undefined || !METRIC_NAME.test(name)) throw new Error(`bad family name in: ${line}`);
      if (current?.name !== name && families.has(name)) throw new Error(`family ${name} is not one group of lines: ${line}`);
      const family = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
      if (declared.has(`${kind} ${name}`)) throw new Error(`${kind} twice for ${name}`);
      declared.add(`${kind} ${name}`);
      if (kind === 'HELP') family.help = rest.join(' ');
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest[0] ?? '')) throw new Error(`bad type in: ${line}`);
        if (family.samples.length > 0) throw new Error(`TYPE after samples in: ${line}`);
        family.type = rest[0] as string;
      }
      families.set(name, family);
      current = family;
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`bad sample line: ${line}`);
    const sample: Sample = { name: match[1] as string, labels: parseLabels(match[2] ?? '', line), value: parseValue(match[3] as string, line) };
    const family = familyOf(families, sample.name);
    if (family === undefined) throw new Error(`sample of an undeclared family: ${line}`);
    if (family !== current) throw new Error(`sample outside its family's group of lines: ${line}`);
    const series = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seriesSeen.has(series)) throw new Error(`series twice: ${line}`);
    seriesSeen.add(series);
    if (family.type === 'counter' && !(sample.value >= 0)) throw new Error(`negative counter: ${line}`);
    family.samples.push(sample);
    samples.push(sample);
  }
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return { families, samples };
}

/** Buckets cumulative and non-decreasing in `le`, the +Inf bucket equal to `_count`, per label set. */
function checkHistogram(family: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (sample.name.endsWith('_bucket') && le === undefined) throw new Error(`${family.name}: a bucket without le`);
    groups.set(key, [...(groups.get(key) ?? []), sample]);
  }
  for (const [key, group] of groups) {
    const buckets = group.filter((sample) => sample.name.endsWith('_bucket'));
    let previous = { le: Number.NEGATIVE_INFINITY, value: 0 };
    for (const bucket of buckets) {
      const le = parseValue(bucket.labels.le as string, family.name);
      if (le <= previous.le || bucket.value < previous.value) throw new Error(`${family.name} ${key}: buckets not cumulative`);
      previous = { le, value: bucket.value };
    }
    const count = group.find((sample) => sample.name.endsWith('_count'));
    if (previous.le !== Number.POSITIVE_INFINITY || count === undefined || count.value !== previous.value)
      throw new Error(`${family.name} ${key}: +Inf bucket and _count disagree`);
    if (group.find((sample) => sample.name.endsWith('_sum')) === undefined) throw new Error(`${family.name} ${key}: no _sum`);
  }
}

/** The one sample with exactly these labels (others must match too), or undefined. */
export function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const matches = exposition.samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  if (matches.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${matches.length} samples`);
  return matches[0]?.value;
}

/** The sum over every sample of that name whose labels include these. */
export function sumOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  return exposition.samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((total, sample) => total + sample.value, 0);
}
