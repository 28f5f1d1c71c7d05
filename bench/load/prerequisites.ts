// nginx and wrk come from the distribution, not npm, so the benchmark checks for them itself and says
// exactly how to get them.

export const INSTALL_COMMAND = 'apt-get update && apt-get install -y nginx wrk';
/** nginx is not required: without it the run leaves its path out. */
const REQUIRED_TOOLS = ['wrk', 'taskset'] as const;

export function missingTools(): string[] {
  ensureSbinOnPath();
  // Bun.which reads the PATH it started with unless given one.
  return REQUIRED_TOOLS.filter((tool) => Bun.which(tool, { PATH: process.env.PATH ?? '' }) === null);
}

export function nginxInstalled(): boolean {
  ensureSbinOnPath();
  return Bun.which('nginx', { PATH: process.env.PATH ?? '' }) !== null;
}

/** Installs nginx and wrk through apt-get; only when asked to and only as root. Returns a problem, if any. */
export async function installTools(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return `--install needs root; run: sudo sh -c '${INSTALL_COMMAND}'`;
  if (Bun.which('apt-get') === null) return 'apt-get not found: install nginx and wrk with your package manager';
  for (const command of [
    ['apt-get', 'update'],
    ['apt-get', 'install', '-y', 'nginx', 'wrk'],
  ]) {
    console.log(`$ ${command.join(' ')}`);
    const child = Bun.spawn(command, { stdout: 'inherit', stderr: 'inherit', stdin: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    // Bounded like everything else in the benchmark.
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    const exitCode = await child.exited;
    clearTimeout(timer);
    if (exitCode !== 0) return `'${command.join(' ')}' failed with exit code ${exitCode}`;
  }
  return undefined;
}

/** Debian puts nginx in /usr/sbin, which a non-root PATH often lacks. */
function ensureSbinOnPath(): void {
  const path = process.env.PATH ?? '';
  if (!path.split(':').includes('/usr/sbin')) process.env.PATH = `${path}:/usr/sbin:/sbin`;
}
