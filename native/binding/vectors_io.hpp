// Embedding-file parsing entry points (binding) for lib/vectors_io.ts: the .npy preamble and header
// (core/io/npy) and the .fvecs/.ivecs/.bvecs layout and record unpacking (core/io/vecs). The core
// files keep their format names; this file keeps the lib's stem. All sync: each call parses a
// header or one chunk (<= 1 MiB) that the JS has already read.
#pragma once

#include <napi.h>

namespace vlk {
namespace binding {

/// npyPreamble(bytes: Uint8Array, fileSize) -> { major, minor, headerStart, headerLen }.
Napi::Value NpyPreamble(const Napi::CallbackInfo& info);
/// npyHeader(bytes: Uint8Array (the file's first headerStart + headerLen bytes), fileSize) ->
/// { descr, kind, itemSize, bigEndian, fortranOrder, shape: number[], count, dataOffset, major }.
Napi::Value NpyHeader(const Napi::CallbackInfo& info);
/// vecsLayout(head: Uint8Array (first min(4, fileSize) bytes), fileSize, elemBytes: 1 | 4) ->
/// { rows, cols, recordBytes }.
Napi::Value VecsLayout(const Napi::CallbackInfo& info);
/// vecsUnpack(chunk: Uint8Array, n, firstRow, cols, elemBytes, out: Float32Array | Int32Array |
/// Uint8Array, outRow0): checks the n records' dims, writes their values to rows outRow0.. of out.
Napi::Value VecsUnpack(const Napi::CallbackInfo& info);

}  // namespace binding
}  // namespace vlk
