// Several workers on one port (KEYWAY_WORKERS): the worker a scrape reaches asks the others for their
// exposition and answers with all of them, so one scrape of the port sees every worker. Were each
// scrape to see one worker, Prometheus would mark the others' series stale at every scrape that
// reached another (a target's series missing from a scrape are ended), and sums and rate() would swing.

import type { WorkerSiblings } from '../../core/spec/cluster.ts';
import { MetricsWriter } from './exposition.ts';

/** The topic the workers ask each other on (prefixed with the plugin's name, as bus topics are). */
export const METRICS_TOPIC = 'metrics:exposition';

const WORKER_UP = 'keyway_metrics_worker_up';

/** This worker's exposition merged with every other worker's that answered in time. */
export async function renderAllWorkers(siblings: WorkerSiblings, own: string): Promise<string> {
  // The primary gone (the worker is about to drain): this worker's samples are all there is to say.
  const gathered = await siblings.ask(METRICS_TOPIC).catch(() => ({ answers: [], unanswered: [] }));
  const texts = [{ worker: siblings.worker, text: own }, ...gathered.answers].sort((first, second) => first.worker - second.worker);
  const up = new MetricsWriter();
  up.family(
    WORKER_UP,
    'gauge',
    'Workers of this instance (KEYWAY_WORKERS) whose samples this scrape holds (1), or that did not answer in time and are left out (0).',
  );
  const states = [...texts.map(({ worker }) => [worker, 1] as const), ...gathered.unanswered.map((worker) => [worker, 0] as const)];
  for (const [worker, state] of states.sort((first, second) => first[0] - second[0])) up.sample(WORKER_UP, `worker="${worker}"`, state);
  return mergeExpositions([...texts.map(({ text }) => text), up.text()]);
}

interface Family {
  help: string | undefined;
  type: string | undefined;
  samples: string[];
}

const HEADER = /^# (HELP|TYPE) (\S+)/;

/**
 * Text expositions as one: each family's HELP and TYPE once and all its samples together (the format
 * requires a family's lines to be one group), families in the order they first appear. The samples
 * keep their labels (`worker="n"`), so no two texts' series collide.
 */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, Family>();
  const familyNamed = (name: string): Family => {
    let family = families.get(name);
    if (family === undefined) families.set(name, (family = { help: undefined, type: undefined, samples: [] }));
    return family;
  };
  for (const text of texts) {
    // Samples before any header (none in Keyway's own text) go in a group of their own, first.
    let current = familyNamed('');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const header = HEADER.exec(line);
      if (header !== null) {
        current = familyNamed(header[2] as string);
        if (header[1] === 'HELP') current.help ??= line;
        else current.type ??= line;
      } else if (!line.startsWith('#')) {
        current.samples.push(line);
      }
    }
  }
  const lines: string[] = [];
  for (const family of families.values()) {
    if (family.help !== undefined) lines.push(family.help);
    if (family.type !== undefined) lines.push(family.type);
    for (const sample of family.samples) lines.push(sample);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
