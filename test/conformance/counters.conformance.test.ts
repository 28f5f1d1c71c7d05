// The in-tree Counters implementation through the counters conformance suite (counters.ts). The
// suite closes each instance it creates, which stops the memory sweeper's interval.

import { MemoryCounters } from '../../core/counters/memory.ts';
import { describeCountersConformance } from './counters.ts';

describeCountersConformance('memory', (clock) => new MemoryCounters(clock));
