// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for the JS tests (test/helpers), and the
// re-seal of an index image after a test edits it: both checksums recomputed, so only the
// structural checks behind them can catch the edit.
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A copy of index image `b` with its payload CRC (offset 112) and header CRC (offset 124) recomputed. */
export function reseal(b: Uint8Array): Buffer {
  const out = Buffer.from(b);
  out.writeUInt32LE(crc32c(out.subarray(128)), 112);
  out.writeUInt32LE(0, 124);
  out.writeUInt32LE(crc32c(out.subarray(0, 128)), 124);
  return out;
}
