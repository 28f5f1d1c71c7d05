// A management change injected into a snapshot load at its worst moment: after the core's four tables
// were read and before a plugin section's query runs (core/credentials/snapshot.ts). Reads made
// through a view of Store.readConsistent are intercepted the same way, so a test sees what the load
// builds with the view and without it.

import type { Store } from '../../core/spec/store.ts';

const CORE_READS = ['listAccounts', 'listActiveGatewayKeys', 'listActiveProviderKeys', 'listPlatformSettings'] as const;
const INTERCEPTED: readonly PropertyKey[] = [...CORE_READS, 'query', 'readConsistent'];

export interface InjectedChange {
  /** True until the change was made (once). */
  armed: boolean;
  coreReads: number;
  waiting: Array<() => void>;
  /** The section's query the change lands before: the first whose SQL holds this text. */
  before: string;
  change: () => Promise<void>;
}

export function injectedChange(before: string, change: () => Promise<void>): InjectedChange {
  return { armed: true, coreReads: 0, waiting: [], before, change };
}

type Method = (...parameters: unknown[]) => Promise<unknown>;

function intercept(property: PropertyKey, method: Method, injected: InjectedChange): Method {
  if ((CORE_READS as readonly PropertyKey[]).includes(property))
    return async (...parameters) => {
      const result = await method(...parameters);
      injected.coreReads += 1;
      if (injected.coreReads >= CORE_READS.length) for (const wake of injected.waiting.splice(0)) wake();
      return result;
    };
  if (property === 'query')
    return async (...parameters) => {
      if (injected.armed && String(parameters[0]).includes(injected.before)) {
        injected.armed = false;
        if (injected.coreReads < CORE_READS.length) await new Promise<void>((resolve) => injected.waiting.push(resolve));
        await injected.change();
      }
      return method(...parameters);
    };
  // readConsistent: the view it hands out is intercepted too.
  return (read) => method((view: Store) => (read as (view: Store) => Promise<unknown>)(interceptedView(view, injected)));
}

/** `target` with its reads intercepted: a new object (a proxy), `target` is left as it was. */
export function interceptedView(target: Store, injected: InjectedChange): Store {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      const bound = (value as Method).bind(object);
      return INTERCEPTED.includes(property) ? intercept(property, bound, injected) : bound;
    },
  });
}

/**
 * The same, on `store` itself (a running gateway's, which its snapshot holds): its read methods are
 * replaced, as tests replace a store method elsewhere. The change should write through methods not
 * intercepted (`execute`, `revokeGatewayKey`…).
 */
export function interceptInPlace(store: Store, injected: InjectedChange): void {
  const writable = store as unknown as Record<PropertyKey, unknown>;
  for (const property of INTERCEPTED) {
    const value = writable[property];
    if (typeof value === 'function') writable[property] = intercept(property, (value as Method).bind(store), injected);
  }
}
