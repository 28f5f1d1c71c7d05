// The in-tree cluster bus through the cluster conformance suite (cluster.ts): three members of one
// LocalClusterHub, as several gateways in one test process use it.

import { LocalClusterHub } from '../../core/cluster/local.ts';
import { describeClusterConformance } from './cluster.ts';

describeClusterConformance('local hub', () => {
  const hub = new LocalClusterHub();
  return [hub.join(), hub.join(), hub.join()];
});
