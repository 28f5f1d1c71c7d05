// The gateway the strategy suites share: account keys and platform keys for the same providers,
// each on its own simulator fleet, and the flagship ("GPT-4") class as the API reports it.

import type { ModelClass } from '../../core/routing/model-classes.ts';
import { classOf, modelClasses } from './expectations.ts';
import { addAccountKeys, addPlatformKeys, startFleet, startRoutingGateway, type ProviderName, type RoutingGateway, type SimulatorFleet } from './harness.ts';

export interface StrategyWorld {
  gateway: RoutingGateway;
  account: SimulatorFleet;
  platform: SimulatorFleet;
  accountKeyIds: Record<string, string>;
  platformKeyIds: Record<string, string>;
  flagship: ModelClass;
}

export async function startStrategyWorld(providers: readonly ProviderName[], logLevel?: string): Promise<StrategyWorld> {
  const account = startFleet('account');
  const platform = startFleet('platform');
  const gateway = await startRoutingGateway({ env: account.environment(), logLevel });
  return {
    gateway,
    account,
    platform,
    accountKeyIds: await addAccountKeys(gateway, account, providers),
    platformKeyIds: await addPlatformKeys(gateway, platform, providers),
    flagship: classOf(await modelClasses(gateway), 'gpt-4'),
  };
}

export async function stopStrategyWorld(world: Pick<StrategyWorld, 'gateway' | 'account' | 'platform'>): Promise<void> {
  await world.gateway.stop();
  await Promise.all([world.account.stop(), world.platform.stop()]);
}
