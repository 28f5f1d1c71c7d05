// Who hears of a provider's disable (ProviderHealthService.onDisabled, docs/plugins.md): the monitor
// tells each disable here, its own or one another member told over the cluster bus. Each listener is
// called in a microtask, so none runs inside the call being recorded or the event being applied.

import type { ProviderDisabledEvent } from '../../spec/services.ts';

/** The account part of a health scope whose keys are the platform's (`platform\u0000openai`). */
export const PLATFORM_SCOPE = 'platform';

type DisableListener = (event: ProviderDisabledEvent) => void;

export class DisableListeners {
  private readonly listeners = new Set<DisableListener>();

  add(listener: DisableListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** A provider's circuit opened for `scope` (`account\u0000provider`) at `at`. */
  tell(scope: string, at: number, reason: string | undefined): void {
    if (this.listeners.size === 0) return;
    const separator = scope.indexOf('\u0000');
    const owner = scope.slice(0, separator);
    const event: ProviderDisabledEvent = { accountId: owner === PLATFORM_SCOPE ? null : owner, provider: scope.slice(separator + 1), at, reason };
    for (const listener of this.listeners) queueMicrotask(() => listener(event));
  }
}
