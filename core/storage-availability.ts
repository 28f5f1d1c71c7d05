// A database that went away makes every store call fail with the driver's own error (a PostgresError,
// SQLITE_BUSY). Left alone, a management call then answered 500 `internal_error` naming the driver's
// class (QA15 cluster #8), though nothing was wrong with Keyway and a retry a little later succeeds.
// The store plugin says which of its errors mean "cannot answer now" (Store.isUnavailable); the store
// the runtime hands out is wrapped here so those become 503 `storage_unavailable` with Retry-After,
// wherever the call came from: the core's routes, a plugin's route or job, a policy's hook.

import { KeywayError } from './errors.ts';
import type { Store } from './spec/store.ts';

/** What a client is told to wait: a restarted server or a failover takes seconds. */
export const STORAGE_RETRY_AFTER_SECONDS = 5;

export function storageUnavailable(cause: unknown): KeywayError {
  return new KeywayError('storage_unavailable', {}, { retryAfterSeconds: STORAGE_RETRY_AFTER_SECONDS, cause });
}

type StoreMethod = (...parameters: unknown[]) => unknown;

/**
 * The store, with its "cannot answer now" errors turned into `storage_unavailable`. A proxy rather
 * than a class listing the methods: the contract has optional methods and grows, and a method the
 * wrapper forgot would silently keep the 500. Every other error, and every value, passes unchanged.
 */
export function withStorageAvailability(store: Store): Store {
  const isUnavailable = store.isUnavailable?.bind(store);
  if (isUnavailable === undefined) return store;
  const translate = (error: unknown): never => {
    throw !(error instanceof KeywayError) && isUnavailable(error) ? storageUnavailable(error) : error;
  };
  // One wrapper per function, so a method replaced on the store (tests do) is wrapped afresh.
  const wrappers = new WeakMap<StoreMethod, StoreMethod>();
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || property === 'isUnavailable') return value;
      const method = value as StoreMethod;
      let wrapper = wrappers.get(method);
      if (wrapper === undefined) {
        wrapper = (...parameters: unknown[]): unknown => {
          let result: unknown;
          try {
            result = method.apply(target, parameters);
          } catch (error) {
            translate(error);
          }
          // Any thenable: a driver's query object is one without being a Promise.
          return typeof (result as PromiseLike<unknown> | undefined)?.then === 'function' ? Promise.resolve(result).catch(translate) : result;
        };
        wrappers.set(method, wrapper);
      }
      return wrapper;
    },
  });
}
