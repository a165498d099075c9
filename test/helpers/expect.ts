// Typed-error assertion for the JS tests (test/helpers): fn must throw a VlkError with code `want`
// (and a message matching `match` when given); anything else fails with the error's own message.
import * as assert from 'uvu/assert';
import { VlkError } from './lib';

export function expectCode(fn: () => unknown, want: string, match?: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, VlkError);
    assert.is((e as VlkError).code, want, (e as Error).message);
    if (match) assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable(`expected ${want}`);
}
