// The embedded store's refusals an operator can act on (a folder that cannot be written, a damaged
// file, a database another process serves). Its own file, so the entry point can refuse a start
// before it loads the store and its driver.

export class StorageError extends Error {
  override name = 'StorageError';
}
