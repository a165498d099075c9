// AbortSignal plumbing shared by every asynchronous operation (lib): the options.signal check, one
// 'abort' listener per signal fanned out to native cancel tokens, and the wrapper that runs a
// binding's *Async call with a token and maps its failures (ABORT_ERR -> AbortError, others ->
// VlkError with the caller's stack).
import { abortError, fromNative, VlkError } from './errors';
import { describe, isRecord } from './args';
import { binding, type NativeCancelToken } from './loader';

function isAbortSignal(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true;
  // A signal from another realm (vm context) passes the same duck test Node's own APIs use.
  return (
    isRecord(value) &&
    typeof value.aborted === 'boolean' &&
    typeof value.addEventListener === 'function' &&
    typeof value.removeEventListener === 'function'
  );
}

/** An optional AbortSignal option (`name`: "options.signal"). @throws VlkError ERR_VLK_INVALID_ARG */
export function readSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!isAbortSignal(value)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected an AbortSignal, got ${describe(value)}`);
  }
  return value;
}

// One 'abort' listener per signal, fanned out to every call in flight on it: a service that
// shares one signal across many calls never trips Node's MaxListenersExceededWarning.
const watched = new WeakMap<AbortSignal, { tokens: Set<NativeCancelToken>; onAbort: () => void }>();

function watchSignal(signal: AbortSignal, token: NativeCancelToken): () => void {
  let entry = watched.get(signal);
  if (entry === undefined) {
    const tokens = new Set<NativeCancelToken>();
    const onAbort = () => {
      for (const t of tokens) t.cancel();
    };
    entry = { tokens, onAbort };
    watched.set(signal, entry);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  const current = entry;
  current.tokens.add(token);
  return () => {
    current.tokens.delete(token);
    if (current.tokens.size === 0 && watched.get(signal) === current) {
      watched.delete(signal);
      signal.removeEventListener('abort', current.onAbort);
    }
  };
}

/**
 * Runs `start` (a binding *Async call) under `signal`: without one, as is; already aborted, an
 * AbortError at once (no work starts); otherwise with a native cancel token that the signal's
 * 'abort' cancels, the listener removed when the call settles. ABORT_ERR becomes the AbortError
 * for `signal` (cause = signal.reason); other native errors become VlkError whose stack starts at
 * the caller of `api`.
 */
export async function runCancellable<T>(
  signal: AbortSignal | undefined,
  api: Function,
  start: (token?: NativeCancelToken) => Promise<T>,
): Promise<T> {
  if (signal === undefined) {
    try {
      return await start();
    } catch (err) {
      throw fromNative(err, api);
    }
  }
  if (signal.aborted) throw abortError(signal);
  const token = binding.createCancelToken();
  const release = watchSignal(signal, token);
  try {
    return await start(token);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === 'ABORT_ERR') throw abortError(signal);
    throw fromNative(err, api);
  } finally {
    release();
  }
}
