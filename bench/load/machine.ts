// What the numbers were measured on: results from another machine are not comparable, so every
// RESULTS.md section carries this.

import { readFileSync } from 'node:fs';
import { nginxVersion } from './nginx.ts';
import { onlineCoreCount } from './processes.ts';

export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryGibibytes: number;
  kernel: string;
  /** Set when /proc/cpuinfo shows the hypervisor flag: neighbours can steal time, so expect noise. */
  virtualized: boolean;
  bunVersion: string;
  nginxVersion: string;
  wrkVersion: string;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function wrkVersion(): string {
  // `wrk -v` prints its banner and exits non-zero; only the first line matters.
  const result = Bun.spawnSync(['wrk', '-v'], { stdout: 'pipe', stderr: 'pipe' });
  const firstLine = `${result.stdout.toString()}${result.stderr.toString()}`.split('\n')[0] ?? '';
  return /^wrk\s+(\S+)/.exec(firstLine)?.[1] ?? 'unknown';
}

export function describeMachine(): MachineDescription {
  const cpuinfo = readText('/proc/cpuinfo');
  const memoryKibibytes = Number(/^MemTotal:\s+(\d+)/m.exec(readText('/proc/meminfo'))?.[1] ?? '0');
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    cores: onlineCoreCount(),
    memoryGibibytes: memoryKibibytes / 1024 / 1024,
    kernel: readText('/proc/sys/kernel/osrelease').trim() || 'unknown',
    virtualized: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
    bunVersion: Bun.version,
    nginxVersion: nginxVersion(),
    wrkVersion: wrkVersion(),
  };
}

export function formatMachine(machine: MachineDescription): string {
  const virtualization = machine.virtualized ? ' (virtual machine)' : '';
  return `${machine.cpuModel}${virtualization}, ${machine.cores} cores, ${machine.memoryGibibytes.toFixed(1)} GiB RAM, Linux ${machine.kernel}, Bun ${machine.bunVersion}, nginx ${machine.nginxVersion}, wrk ${machine.wrkVersion}`;
}
