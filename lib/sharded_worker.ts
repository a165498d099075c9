// Worker entry of ShardedIndex (lib): one shard, a worker_thread that holds its own FlatIndex and
// answers the main thread's requests (sharded_index.ts) one message at a time. Built next to
// sharded_index.js in dist/cjs and started from there; not part of the public API. Every request
// gets exactly one reply, { id, ok: true, value } or { id, ok: false, code, message }; errors cross
// the thread boundary as code + message and become VlkError again on the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { FlatIndex } from './flat_index';
import type { FlatIndexMemoryUsage, FlatIndexOptions, FlatIndexSearchOptions, FlatIndexSearchResult } from './types';

/** workerData of a shard: the options its FlatIndex is created with (validated by the main thread). */
export type ShardInit = FlatIndexOptions;

/** A request from the main thread. `id` is unique per index; `abort` names the search to stop. */
export type ShardRequest =
  | { op: 'add'; id: number; data: ArrayBuffer; rows: number; ids: Float64Array | BigInt64Array }
  // commit false: only check that every id is present once (nothing changes); an error is the one
  // FlatIndex.remove gives for these ids.
  | { op: 'remove'; id: number; ids: Float64Array | BigInt64Array; commit: boolean }
  | { op: 'has' | 'get'; id: number; key: number | bigint }
  // options: the caller's search options without `signal` (k, threads, filter, ...), checked by
  // this shard's FlatIndex.search itself.
  | { op: 'search'; id: number; queries: SharedArrayBuffer; rows: number; options: Omit<FlatIndexSearchOptions, 'signal'> }
  | { op: 'abort'; id: number }
  | { op: 'memory' | 'compact'; id: number };

/** The reply to one request (abort requests get none). */
export type ShardReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; code: string; message: string };

/** What a shard answers to `memory`: its FlatIndex's memoryUsage() and size. */
export type ShardMemory = FlatIndexMemoryUsage & { size: number };

function run(): void {
  const port = parentPort;
  if (port === null) throw new Error('sharded_worker.js is a worker_threads entry; ShardedIndex starts it');
  const init = workerData as ShardInit;
  const index = new FlatIndex(init);
  const searches = new Map<number, AbortController>();

  const reply = (id: number, value: unknown, transfer: ArrayBuffer[] = []) => {
    port.postMessage({ id, ok: true, value } satisfies ShardReply, transfer);
  };
  const fail = (id: number, err: unknown) => {
    const e = err as { code?: unknown; message?: unknown } | null;
    const code = typeof e?.code === 'string' ? e.code : 'ERR_VLK_INTERNAL';
    const message = typeof e?.message === 'string' ? e.message : String(err);
    port.postMessage({ id, ok: false, code, message } satisfies ShardReply);
  };

  // Checks a removal without doing it: the first id that is absent or repeated makes FlatIndex's own
  // remove fail (and remove nothing), which gives the exact error.
  const checkRemove = (ids: Float64Array | BigInt64Array): void => {
    const seen = new Set<number | bigint>();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!index.has(id) || seen.has(id)) {
        index.remove(ids); // throws
        throw new Error(`shard check: ids[${i}] (${id}) failed the check but remove() accepted the ids`);
      }
      seen.add(id);
    }
  };

  port.on('message', (msg: ShardRequest) => {
    try {
      switch (msg.op) {
        case 'add':
          index.add({ data: new Float32Array(msg.data), rows: msg.rows, cols: init.dim }, msg.ids);
          reply(msg.id, undefined);
          return;
        case 'remove':
          if (msg.commit) reply(msg.id, index.remove(msg.ids));
          else {
            checkRemove(msg.ids);
            reply(msg.id, 0);
          }
          return;
        case 'has':
          reply(msg.id, index.has(msg.key));
          return;
        case 'get': {
          const v = index.get(msg.key);
          reply(msg.id, v, [v.buffer as ArrayBuffer]);
          return;
        }
        case 'memory':
          reply(msg.id, { ...index.memoryUsage(), size: index.size } satisfies ShardMemory);
          return;
        case 'compact':
          reply(msg.id, index.compact());
          return;
        case 'abort':
          searches.get(msg.id)?.abort();
          return;
        case 'search': {
          const controller = new AbortController();
          searches.set(msg.id, controller);
          const queries = { data: new Float32Array(msg.queries, 0, msg.rows * init.dim), rows: msg.rows, cols: init.dim };
          index.search(queries, { ...msg.options, signal: controller.signal }).then(
            (r: FlatIndexSearchResult) => {
              searches.delete(msg.id);
              // The result arrays own their buffers: hand them over rather than copy them.
              const buffers = new Set<ArrayBuffer>();
              for (const v of Object.values(r)) if (ArrayBuffer.isView(v)) buffers.add(v.buffer as ArrayBuffer);
              reply(msg.id, r, [...buffers]);
            },
            (err: unknown) => {
              searches.delete(msg.id);
              fail(msg.id, err);
            },
          );
          return;
        }
        default:
          fail((msg as { id: number }).id, new Error(`unknown request ${JSON.stringify((msg as { op: unknown }).op)}`));
      }
    } catch (err) {
      fail(msg.id, err);
    }
  });
}

run();
