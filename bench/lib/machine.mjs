// Describes the machine a benchmark ran on (CPU model, cores, SIMD flags, memory, OS, Node) and measures
// how much CPU other processes take meanwhile. Bench and demo support, Linux-first.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export function machineInfo() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  let flags = [];
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    cpu = /^model name\s*:\s*(.*)$/m.exec(text)?.[1] ?? cpu;
    // Virtual machines often report a bare "AMD EPYC"; family and model still name the generation.
    const family = /^cpu family\s*:\s*(\d+)$/m.exec(text)?.[1];
    const model = /^model\s*:\s*(\d+)$/m.exec(text)?.[1];
    if (family) cpu += ` (family ${family}, model ${model})`;
    const f = /^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
    flags = f.split(/\s+/).filter((x) => /^(avx2|fma|avx512\w*|avx_vnni)$/.test(x));
  } catch {
    // Not Linux: os.cpus() already gave the model; flags stay empty.
  }
  return {
    cpu,
    cores: os.availableParallelism(),
    simdFlags: flags,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

/**
 * CPU time snapshot: all cores' busy time and this process's own time plus its waited-for children's
 * (Linux /proc/self/stat; USER_HZ is 100 on Linux). Two snapshots give the share of the machine used by
 * other processes meanwhile: the noise a timing carries on a shared machine. Null where unavailable.
 */
export function cpuSnapshot() {
  try {
    const busy = os.cpus().reduce((s, c) => s + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // After "pid (comm) ", field 3 (state) is index 0, so utime..cstime (fields 14..17) are 11..14.
    const ownTicks = [11, 12, 13, 14].reduce((s, i) => s + Number(fields[i]), 0);
    return { wall: performance.now(), busy, own: ownTicks * 10, cores: os.cpus().length };
  } catch {
    return null;
  }
}

/** Fraction (0..1) of the machine's CPU used by other processes between two snapshots. */
export function foreignCpu(a, b) {
  if (!a || !b || b.wall <= a.wall) return null;
  const other = b.busy - a.busy - (b.own - a.own);
  return Math.max(0, other / ((b.wall - a.wall) * a.cores));
}
