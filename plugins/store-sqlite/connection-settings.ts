// Settings both connections to the database file share: the gateway's (database.ts) and the usage
// writer thread's (usage-writer.ts).

/**
 * WAL lets the two connections read and write side by side; synchronous=NORMAL syncs at each
 * checkpoint, not at each commit: a committed batch survives a crash of the process, and a power loss
 * can lose the last commits, as before.
 *
 * wal_autocheckpoint: the connection that commits past this many WAL pages copies them into the
 * database file. Every usage batch rewrites the same hot pages (the end of each index, the roll-up
 * rows of the hour), so checkpointing every 10,000 pages (~40 MB of WAL) instead of SQLite's 1,000
 * copies each of them once per ten times as many batches. Durability is unchanged: a commit is in the
 * WAL either way, and a checkpoint only moves it. Both connections use the same bound, so a rare write
 * on the gateway's thread does not find the WAL over its own, smaller bound and checkpoint there.
 *
 * busy_timeout comes first: `journal_mode` takes a lock, and a connection without its timeout yet gives
 * up at once when another holds one (the last connection of a stopping process checkpoints the WAL
 * as it closes; a restarted worker opened beside it failed with SQLITE_BUSY, seen in the test suite).
 */
export const CONNECTION_PRAGMAS = 'PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 10000;';
