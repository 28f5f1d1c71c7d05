// Shared by the gateway thread and the usage writer thread (usage-writer.ts).

/** A roll-up statement gets the batch's first and last id when it has placeholders for them. */
export function runFollowUp(
  statement: { run(...parameters: Array<number | bigint>): unknown },
  text: string,
  first: number | bigint,
  last: number | bigint,
): void {
  if (text.includes('?')) statement.run(first, last);
  else statement.run();
}
