// Errors of the public API (lib): VlkError with a stable `code` for every failure, the code list
// mirrored from the native core (native/core/common/status.hpp, same order, without "OK"; a test
// compares it with the binding's), AbortError for cancelled calls, and the rethrow of native errors.
import { types } from 'node:util';

/**
 * Every code a native call can produce, in the core's order (ERR_VLK_LOAD, from the loader, is
 * not in this list).
 *
 * @example
 * ```ts
 * import { errorCodes } from 'vlkernels';
 * errorCodes.includes('ERR_VLK_SHAPE'); // true
 * ```
 * @throws Nothing: a frozen constant.
 */
export const errorCodes = Object.freeze([
  'ERR_VLK_TYPE',
  'ERR_VLK_DIM_MISMATCH',
  'ERR_VLK_SHAPE',
  'ERR_VLK_INVALID_K',
  'ERR_VLK_NON_FINITE',
  'ERR_VLK_EMPTY',
  'ERR_VLK_INVALID_ARG',
  'ERR_VLK_UNSUPPORTED_ISA',
  'ERR_VLK_OUT_OF_MEMORY',
  'ABORT_ERR',
  'ERR_VLK_IO',
  'ERR_VLK_CORRUPT',
  'ERR_VLK_NO_DEVICE',
  'ERR_VLK_INTERNAL',
] as const);

/** A code from the native list. */
export type NativeErrorCode = (typeof errorCodes)[number];

/** The `code` of a {@link VlkError}: a native code, or `ERR_VLK_LOAD` when the addon cannot load. */
export type VlkErrorCode = NativeErrorCode | 'ERR_VLK_LOAD';

/**
 * The error every vlkernels call throws or rejects with. `code` says what went wrong; the message
 * names the argument and the numbers ("gallery: length 1000 is not a multiple of dim 512").
 *
 * @example
 * ```ts
 * import { searchSync, VlkError } from 'vlkernels';
 * try {
 *   searchSync(queries, gallery, { k: 0, dim: 512 });
 * } catch (err) {
 *   if (err instanceof VlkError && err.code === 'ERR_VLK_INVALID_K') console.error(err.message);
 * }
 * ```
 * @throws Nothing itself; it is what every vlkernels call throws or rejects with.
 */
export class VlkError extends Error {
  /** Stable machine-readable reason. */
  readonly code: VlkErrorCode;

  constructor(code: VlkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
Object.defineProperty(VlkError.prototype, 'name', { value: 'VlkError', writable: true, configurable: true });

/**
 * Rejection of an aborted asynchronous call: `name` 'AbortError', `code` 'ABORT_ERR', `cause` the
 * signal's reason (as Node's own AbortError).
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const pending = search(queries, gallery, { k: 10, signal: ac.signal });
 * ac.abort();
 * await pending.catch((err) => err.name === 'AbortError'); // true
 * ```
 * @throws Nothing itself; it is what an aborted asynchronous call rejects with.
 */
export class AbortError extends VlkError {
  declare readonly code: 'ABORT_ERR';

  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super('ABORT_ERR', message, options);
  }
}
Object.defineProperty(AbortError.prototype, 'name', { value: 'AbortError', writable: true, configurable: true });

const knownCodes: ReadonlySet<string> = new Set<string>([...errorCodes, 'ERR_VLK_LOAD']);

/** The AbortError for `signal` (cause = signal.reason). */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError('The operation was aborted', { cause: signal.reason });
}

/**
 * A native error (an Error with a known `code`) as a VlkError whose stack starts at the caller of
 * `api`; anything else (e.g. an exception from a user getter) is returned unchanged.
 */
export function fromNative(err: unknown, api: Function): unknown {
  if (!types.isNativeError(err) && !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !knownCodes.has(code)) return err;
  const wrapped = code === 'ABORT_ERR' ? new AbortError(err.message) : new VlkError(code as VlkErrorCode, err.message);
  Error.captureStackTrace(wrapped, api);
  return wrapped;
}

/** Runs a validation step; a VlkError it throws gets a stack that starts at the caller of `api`. */
export function atApi<T>(step: () => T, api: Function): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof VlkError) Error.captureStackTrace(err, api);
    throw err;
  }
}
