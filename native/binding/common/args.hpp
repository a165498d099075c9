// Argument parsing shared by every binding op (binding/common): numbers and sizes, value
// descriptions for messages, Int32Array inputs, matrix inputs (Float32Array + dim, { data, rows,
// cols }, { data, dims: [rows, cols] }) turned into zero-copy core views (byteOffset included), and
// the Q x k result arrays of the ops that answer like search ({ indices, scores, counts, k, count }).
// Bad input yields a Status (never a crash); only a throwing user getter raises a JS exception.
#pragma once

#include <napi.h>

#include "search/search.hpp"

#include <cstdint>
#include <string>

#include "common/matrix.hpp"
#include "common/status.hpp"
#include "common/context.hpp"
#include "cuda/common/cuda_api.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

/// Largest integer a JS number holds exactly (2^53 - 1); sizes above it are kShape.
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

/// What SizeMul returns when a product of sizes does not fit int64: no array has that length (a
/// length check against it fails with kShape) and no allocation of it passes CheckAllocation.
constexpr int64_t kSizeOverflow = INT64_MAX;

/// The product of sizes (each >= 0, as ReadSize returns them) for a length check or an output
/// allocation; kSizeOverflow instead of a wrapped value when it overflows (a hostile spec with
/// q = l = 2^32 would otherwise expect an empty array and let the core index far past it).
inline int64_t SizeMul(int64_t a) { return a; }
template <class... Rest>
inline int64_t SizeMul(int64_t a, int64_t b, Rest... rest) {
  int64_t r = 0;
  // A zero factor after an overflow gives 0 again, which is the true product.
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) r = kSizeOverflow;
  return SizeMul(r, static_cast<int64_t>(rest)...);
}

/// JS-like number text: "1.5", "NaN", "Infinity", "-3".
std::string FormatNumber(double value);

/// Short description for messages: "undefined", "null", "a number (1.5)", "a Float64Array", ...
std::string Describe(Napi::Value value);

/// True for a JS object (including arrays and functions), false for null and primitives.
bool IsObject(Napi::Value value);

/// A non-negative integer size <= 2^53 - 1 (rows, cols, dim). kShape naming `name` otherwise.
Status ReadSize(Napi::Value value, const std::string& name, int64_t* out);

/// An optional boolean flag: undefined is `fallback`; anything but a boolean is kInvalidArg.
Status ReadFlag(Napi::Value value, const std::string& name, bool fallback, bool* out);

/// An Int32Array's elements, read in place (byteOffset included; null when empty). Errors: kType
/// (not an Int32Array), kInvalidArg (detached buffer), both naming `name`.
Status ReadInt32s(Napi::Value value, const std::string& name, const int32_t** data, size_t* length);

/// A matrix argument: a read-only view into the caller's Float32Array (no copy) and the typed
/// array itself, which an async job keeps referenced until it completes.
struct MatrixArg {
  MatrixView<const float> view;
  Napi::Float32Array array;
  bool plain = false;  // a bare Float32Array: rows and cols come from options.dim (ShapeMatrix)
};

/// First phase for `value` named `name` ("queries", "gallery"): the type, and for a view its
/// rows/cols (or dims) and length; both inputs pass it before plain arrays are split by dim.
/// Errors: kType (not a Float32Array or view object, or data not a Float32Array), kShape (bad
/// rows/cols/dims, length != rows*cols), kInvalidArg (detached view data).
Status ReadMatrix(Napi::Value value, const char* name, MatrixArg* out);

/// Second phase: a plain array split into rows of `dim` (has_dim: options.dim given), or a view
/// checked against it. Errors: kInvalidArg (plain array without dim, detached), kEmpty (dim 0),
/// kDimMismatch (length not a multiple of dim, or view cols != dim).
Status ShapeMatrix(const char* name, bool has_dim, int64_t dim, MatrixArg* arg);

/// The Q x k result arrays of a search-shaped op (indices: Int32Array, scores: Float32Array, both
/// count x k row-major; counts: Int32Array of count), V8-allocated (never external) so every
/// embedder accepts them. JS thread. Errors: kOutOfMemory (too large, or V8 cannot allocate).
Status AllocateSearchResult(Napi::Env env, int64_t count, int64_t k, Napi::Int32Array* indices,
                            Napi::Float32Array* scores, Napi::Int32Array* counts);

/// { indices, scores, counts, k, count }: what search and rerank resolve with. JS thread.
Napi::Object MakeSearchResult(Napi::Env env, Napi::Value indices, Napi::Value scores, Napi::Value counts,
                              int64_t k, int64_t count);

/// options.metric: undefined leaves *out as it is; otherwise 'ip' | 'cosine' | 'l2' (kInvalidArg).
Status ReadMetric(Napi::Value value, core::Metric* out);

/// options.threads: undefined is the pool size; otherwise an integer >= 1 (kInvalidArg), capped
/// at 65536 so the int conversion stays exact.
Status ReadThreads(Napi::Value value, int* out);

/// options.device: where an operation runs.
enum class Device { kCpu, kCuda, kAuto };

/// "cpu", "cuda", "auto".
const char* DeviceName(Device device);

/// options.device: undefined is 'cpu'; otherwise 'cpu' | 'cuda' | 'auto' (kInvalidArg).
Status ReadDevice(Napi::Value value, Device* out);

/// options.precision of a FlatIndex search (search has its own, ReadSearchPrecision in search.cpp,
/// which also takes 'bf16' and 'i8' on the CPU): undefined is 'exact'; otherwise 'exact' | 'bf16'
/// (kInvalidArg). 'bf16' is a GPU scan: only with device 'cuda' (kInvalidArg naming the device
/// otherwise, 'auto' included, so that a result's precision never depends on the machine).
Status ReadPrecision(Napi::Value value, Device device, cuda::Precision* out);

/// The backend a call runs on. 'cpu': the CPU. 'cuda': the GPU, or kNoDevice naming
/// cuda::device_info().reason when CUDA is not usable here. 'auto': the GPU when it is usable and
/// `gpu_capable` (the call has no feature the GPU path lacks, e.g. filters), else the CPU.
Status ResolveDevice(Device requested, bool gpu_capable, bool* use_cuda);

/// The shared first step of every queries-against-gallery operation: both matrices read (and
/// split by options.dim when plain), non-empty, same dim. Errors as ReadMatrix / ShapeMatrix, plus
/// kEmpty and kDimMismatch, in that order (lib checks in the same order).
Status ReadQueriesAndGallery(Napi::Value queries, Napi::Value gallery, Napi::Object options,
                             MatrixArg* q, MatrixArg* g);

/// The context of a call on the addon's pool: `threads` wide, kernel path `isa`, optional cancel flag.
Context MakeContext(int threads, Isa isa, const CancelFlag* cancel);

}  // namespace binding
}  // namespace vlk
