// Every provider plugin through the same conformance scenarios (provider-conformance.ts), each over
// HTTP through its own gateway against its own simulator.

import { describeProviderConformance } from './provider-conformance.ts';
import { PROVIDER_DESCRIPTORS } from './provider-descriptors.ts';

for (const descriptor of PROVIDER_DESCRIPTORS) describeProviderConformance(descriptor);
