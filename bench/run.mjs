// Benchmark entry point: `npm run bench -- <operation> [options]` runs bench/<operation>.bench.mjs,
// whose main(argv) parses its own options. One file per operation, named by the operation's stem.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const SUFFIX = '.bench.mjs';
const operations = readdirSync(here)
  .filter((f) => f.endsWith(SUFFIX))
  .map((f) => f.slice(0, -SUFFIX.length))
  .sort();

const [op, ...rest] = process.argv.slice(2);
if (!op || op === '--help' || op === '-h' || !operations.includes(op)) {
  const lines = [
    'usage: npm run bench -- <operation> [options]',
    `operations: ${operations.join(', ')}`,
    'options per operation: npm run bench -- <operation> --help',
  ];
  if (op && !operations.includes(op) && op !== '--help' && op !== '-h') lines.unshift(`unknown operation "${op}"`);
  console.log(lines.join('\n'));
  process.exit(op && op !== '--help' && op !== '-h' ? 2 : 0);
}

const { main } = await import(`./${op}${SUFFIX}`);
try {
  process.exitCode = await main(rest);
} catch (e) {
  // Option errors (parseArgs, validation) read better as one line than as a stack trace.
  console.error(`bench ${op}: ${e.message}`);
  process.exitCode = 2;
}
