// Child-process helpers for the JS tests (test/helpers): run a short CommonJS script with a chosen
// environment (e.g. VLK_FORCE_ISA) and read back the JSON it prints on its last stdout line.
import { spawnSync } from 'node:child_process';
import { repoRoot } from './paths';

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** JSON.parse of the last non-empty stdout line, or undefined. */
  json: any;
}

/** Runs `node -e script` in the repo root with extra env vars (undefined deletes a variable). */
export function runNode(
  script: string,
  env: Record<string, string | undefined> = {},
  args: string[] = [],
): ChildResult {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const r = spawnSync(process.execPath, [...args, '-e', script], {
    cwd: repoRoot,
    env: childEnv,
    encoding: 'utf8',
    timeout: 60_000,
  });
  const lines = (r.stdout ?? '').split('\n').filter((l) => l.trim().length > 0);
  let json: any;
  try {
    json = lines.length ? JSON.parse(lines[lines.length - 1]) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json };
}
