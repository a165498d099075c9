// FlatIndex entry points (binding). See flat_index.hpp. Parsing repeats lib/flat_index.ts's checks
// with the same codes (lib runs first and gives the same messages). Search results are V8-allocated:
// the ids live in an ArrayBuffer of count x k int64 that core fills; once the search is done the
// ids become a BigInt64Array (the index was given BigInt64Array ids by then) or, rewritten in place
// as doubles, a Float64Array (every id is then an integer <= 2^53 - 1).
// Device 'cuda': searches run on a GPU mirror of the index (CudaResidency below): the live rows
// gathered in insertion order (core's export_image, as a save does) and uploaded once per version
// of the index, so the mirror's row order is the CPU's tie order and results equal the CPU's.
#include "flat_index.hpp"

#include "common/alloc_limit.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/context.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "compose.hpp"
#include "cuda/common/cuda_api.hpp"
#include "isa/isa.hpp"
#include "search/search.hpp"

namespace vlk {
namespace binding {

// The GPU mirror of one version of a 'cuda' index: its live rows in insertion order on the device.
struct CudaMirror {
  int64_t version = -1;                           // core::FlatIndex::version() it copies
  Status status;                                  // the upload's outcome (not ok: the GPU declined)
  std::shared_ptr<cuda::DeviceGallery> gallery;   // null when the index had no live rows
  std::vector<int64_t> ids;                       // mirror row -> user id
  std::vector<std::pair<int64_t, int32_t>> rows;  // (id, mirror row), sorted by id: filters

  // The mirror row of `id`, or -1.
  int64_t row_of(int64_t id) const {
    auto it = std::lower_bound(rows.begin(), rows.end(), std::make_pair(id, std::numeric_limits<int32_t>::min()));
    return it != rows.end() && it->first == id ? it->second : -1;
  }
};

class CudaResidency {
 public:
  explicit CudaResidency(bool fallback) : fallback_(fallback) {}

  /// Requested as 'auto': a search the GPU declines (device memory, k or size beyond its limits,
  /// the device gone) runs on the CPU instead.
  bool fallback() const { return fallback_; }

  /// The mirror of the index as it is now: the current one if the index's version has not moved,
  /// else a new upload (one at a time: concurrent searches wait for it and share it). The stale
  /// mirror is dropped first, so its device memory goes as soon as no running search holds it.
  Status Current(const core::FlatIndex& index, const CancelFlag* cancel, std::shared_ptr<const CudaMirror>* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ && current_->version == index.version()) {
      *out = current_;
      return Status::Ok();
    }
    current_.reset();
    try {
      const std::shared_ptr<const core::IndexSnapshot> snap = index.freeze();
      core::IndexExport ex;
      VLK_RETURN_IF_ERROR(index.export_image(snap, &ex, cancel));
      auto m = std::make_shared<CudaMirror>();
      m->version = core::FlatIndex::snapshot_version(*snap);
      const int64_t n = ex.image.count;
      if (n > 0) {
        m->status = cuda::upload_gallery(MatrixView<const float>(ex.image.f32, n, index.dim()), index.metric(),
                                         &m->gallery);
      }
      if (m->status.ok()) {
        m->ids = std::move(ex.ids);
        m->rows.reserve(static_cast<size_t>(n));
        for (int64_t r = 0; r < n; ++r) m->rows.emplace_back(m->ids[static_cast<size_t>(r)], static_cast<int32_t>(r));
        std::sort(m->rows.begin(), m->rows.end());
      }
      current_ = m;
      *out = std::move(m);
      return Status::Ok();
    } catch (const std::bad_alloc&) {
      return Status(Code::kOutOfMemory, "device 'cuda': out of host memory gathering the index's rows");
    }
  }

 private:
  const bool fallback_;
  std::mutex mu_;
  std::shared_ptr<const CudaMirror> current_;
};

namespace {

// counts are an Int32Array, so k (their largest value) must fit one; dim has the same bound.
constexpr double kMaxInt32 = 2147483647.0;
constexpr double kMaxIdDouble = 9007199254740991.0;  // 2^53 - 1

using BigIntFlag = std::shared_ptr<std::atomic<bool>>;

bool IsTyped(Napi::Value v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

// By the data pointer: ArrayBuffer().ByteLength() throws a code-less "Invalid argument" for a
// SharedArrayBuffer-backed array (napi_get_arraybuffer_info takes only ArrayBuffers).
bool IsDetachedArray(const Napi::TypedArray& a) {
  void* data = nullptr;
  if (napi_get_typedarray_info(a.Env(), a, nullptr, nullptr, &data, nullptr, nullptr) != napi_ok) return true;
  return a.ElementLength() > 0 && data == nullptr;
}

bool IsIdDouble(double d) { return std::isfinite(d) && std::floor(d) == d && d >= 0 && d <= kMaxIdDouble; }

// One id: a number (an integer in 0..2^53 - 1) or a bigint (in 0..2^63 - 1).
Status ReadId(Napi::Value value, int64_t* out) {
  if (value.IsNumber()) {
    const double d = value.As<Napi::Number>().DoubleValue();
    if (!IsIdDouble(d)) {
      return Status(Code::kInvalidArg, "id: " + FormatNumber(d) + " is not an integer in 0..2^53 - 1 (use a bigint beyond)");
    }
    *out = static_cast<int64_t>(d);
    return Status::Ok();
  }
  if (value.IsBigInt()) {
    bool lossless = false;
    const int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless || v < 0) {
      return Status(Code::kInvalidArg, "id: " + value.ToString().Utf8Value() + "n is not in 0..2^63 - 1");
    }
    *out = v;
    return Status::Ok();
  }
  return Status(Code::kType, "id: expected a number or a bigint, got " + Describe(value));
}

// ids: a Float64Array (integers 0..2^53 - 1) or a BigInt64Array (>= 0), copied into *out.
// expected >= 0: the length it must have (kShape naming `what` otherwise).
Status ReadIds(Napi::Value value, int64_t expected, const char* what, std::vector<int64_t>* out, bool* bigint) {
  const bool f64 = IsTyped(value, napi_float64_array);
  if (!f64 && !IsTyped(value, napi_bigint64_array)) {
    return Status(Code::kType, "ids: expected a Float64Array or a BigInt64Array, got " + Describe(value));
  }
  Napi::TypedArray a = value.As<Napi::TypedArray>();
  if (IsDetachedArray(a)) return Status(Code::kInvalidArg, "ids: the buffer is detached");
  const size_t n = a.ElementLength();
  if (expected >= 0 && static_cast<int64_t>(n) != expected) {
    return Status(Code::kShape, "ids: length " + std::to_string(n) + " is not the number of " + what + " (" +
                                    std::to_string(expected) + ")");
  }
  *bigint = !f64;
  try {
    out->resize(n);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "ids: cannot copy " + std::to_string(n) + " ids");
  }
  if (f64) {
    const double* d = n > 0 ? a.As<Napi::Float64Array>().Data() : nullptr;
    for (size_t i = 0; i < n; ++i) {
      if (!IsIdDouble(d[i])) {
        return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: " + FormatNumber(d[i]) +
                                             " is not an integer in 0..2^53 - 1 (use a BigInt64Array beyond)");
      }
      (*out)[i] = static_cast<int64_t>(d[i]);
    }
  } else {
    const int64_t* b = n > 0 ? a.As<Napi::BigInt64Array>().Data() : nullptr;
    for (size_t i = 0; i < n; ++i) {
      if (b[i] < 0) {
        return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: " + std::to_string(b[i]) +
                                             "n is negative (ids are integers >= 0)");
      }
      (*out)[i] = b[i];
    }
  }
  return Status::Ok();
}

// A matrix argument of rows x dim: a plain Float32Array split by dim, or a view whose cols is dim.
Status ReadRows(Napi::Value value, const char* name, int64_t dim, MatrixArg* arg) {
  VLK_RETURN_IF_ERROR(ReadMatrix(value, name, arg));
  if (!arg->plain && arg->view.cols != dim) {
    return Status(Code::kDimMismatch, std::string(name) + ": cols " + std::to_string(arg->view.cols) +
                                          " differs from the index's dim " + std::to_string(dim));
  }
  return ShapeMatrix(name, true, dim, arg);
}

struct IndexSearchCall {
  MatrixArg queries;
  int64_t k = 1;
  int threads = 1;
  cuda::Precision precision = cuda::Precision::kExact;  // 'bf16': a 'cuda' index only
  // options.filter, resolved to ids (copies: small next to the search).
  bool has_allow = false;
  std::vector<int64_t> allow;
  std::vector<int64_t> exclude_offsets;  // Q + 1, empty: no exclusions
  std::vector<int64_t> exclude_ids;
  core::IndexFilter filter() const {
    core::IndexFilter f;
    f.has_allow = has_allow;
    f.allow_ids = allow.data();
    f.n_allow = static_cast<int64_t>(allow.size());
    if (!exclude_offsets.empty()) {
      f.exclude_offsets = exclude_offsets.data();
      f.exclude_ids = exclude_ids.data();
    }
    return f;
  }
};

// options.filter: { allow?: ids, exclude?: ids (one per query, -1: none) | { offsets: Int32Array
// (Q + 1), ids } } with ids a Float64Array or BigInt64Array (lib converts friendlier forms).
Status ReadFilter(Napi::Value value, int64_t q, IndexSearchCall* call) {
  if (value.IsUndefined()) return Status::Ok();
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    return Status(Code::kType, "options.filter: expected an object { allow?, exclude? }, got " + Describe(value));
  }
  Napi::Object f = value.As<Napi::Object>();
  bool bigint = false;
  Napi::Value allow = f.Get("allow");
  if (!allow.IsUndefined()) {
    VLK_RETURN_IF_ERROR(ReadIds(allow, -1, "", &call->allow, &bigint));
    call->has_allow = true;
  }
  Napi::Value ex = f.Get("exclude");
  if (ex.IsUndefined()) return Status::Ok();
  call->exclude_offsets.assign(static_cast<size_t>(q) + 1, 0);
  if (IsTyped(ex, napi_float64_array) || IsTyped(ex, napi_bigint64_array)) {
    Napi::TypedArray a = ex.As<Napi::TypedArray>();
    if (static_cast<int64_t>(a.ElementLength()) != q) {
      return Status(Code::kShape, "options.filter.exclude: length " + std::to_string(a.ElementLength()) +
                                      " is not the number of queries (" + std::to_string(q) + ")");
    }
    for (int64_t i = 0; i < q; ++i) {
      int64_t id = -1;
      if (IsTyped(ex, napi_float64_array)) {
        const double d = ex.As<Napi::Float64Array>()[static_cast<size_t>(i)];
        if (d != -1 && !IsIdDouble(d)) {
          return Status(Code::kInvalidArg, "options.filter.exclude[" + std::to_string(i) + "]: " + FormatNumber(d) +
                                               " is not an id (integer in 0..2^53 - 1) or -1 (none)");
        }
        id = static_cast<int64_t>(d);
      } else {
        id = ex.As<Napi::BigInt64Array>()[static_cast<size_t>(i)];
        if (id < -1) {
          return Status(Code::kInvalidArg, "options.filter.exclude[" + std::to_string(i) + "]: " +
                                               std::to_string(id) + "n is not an id or -1n (none)");
        }
      }
      if (id >= 0) call->exclude_ids.push_back(id);
      call->exclude_offsets[static_cast<size_t>(i) + 1] = static_cast<int64_t>(call->exclude_ids.size());
    }
    return Status::Ok();
  }
  if (!ex.IsObject() || ex.IsArray()) {
    return Status(Code::kType, "options.filter.exclude: expected ids (one per query) or { offsets, ids }, got " +
                                   Describe(ex));
  }
  Napi::Object o = ex.As<Napi::Object>();
  const int32_t* off = nullptr;
  size_t n_off = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(o.Get("offsets"), "options.filter.exclude.offsets", &off, &n_off));
  VLK_RETURN_IF_ERROR(ReadIds(o.Get("ids"), -1, "", &call->exclude_ids, &bigint));
  if (static_cast<int64_t>(n_off) != q + 1) {
    return Status(Code::kShape, "options.filter.exclude.offsets: length " + std::to_string(n_off) +
                                    " is not queries + 1 (" + std::to_string(q + 1) + ")");
  }
  if (off[0] != 0 || off[q] != static_cast<int64_t>(call->exclude_ids.size())) {
    return Status(Code::kShape, "options.filter.exclude.offsets: must start at 0 and end at ids.length (" +
                                    std::to_string(call->exclude_ids.size()) + ")");
  }
  for (int64_t i = 0; i <= q; ++i) {
    if (i > 0 && off[i] < off[i - 1]) {
      return Status(Code::kInvalidArg, "options.filter.exclude.offsets: decrease at query " + std::to_string(i - 1));
    }
    call->exclude_offsets[static_cast<size_t>(i)] = off[i];
  }
  return Status::Ok();
}

// queries, options -> the call. Order of checks matches lib/flat_index.ts. on_cuda: the index's
// device is 'cuda' (precision 'bf16' is allowed).
Status ParseSearchOptions(Napi::Object options, int64_t rows, bool on_cuda, IndexSearchCall* call);

Status ParseSearch(const Napi::CallbackInfo& info, int64_t dim, bool on_cuda, IndexSearchCall* call) {
  Napi::Value options_value = info[1];
  if (!options_value.IsObject() || options_value.IsArray() || options_value.IsFunction()) {
    return Status(Code::kType, "options: expected an object such as { k: 10 }, got " + Describe(options_value));
  }
  Napi::Object options = options_value.As<Napi::Object>();
  VLK_RETURN_IF_ERROR(ReadRows(info[0], "queries", dim, &call->queries));
  const MatrixView<const float>& q = call->queries.view;
  if (q.rows == 0) {
    return Status(Code::kEmpty, "queries: shape 0 x " + std::to_string(q.cols) + " is empty");
  }
  return ParseSearchOptions(options, q.rows, on_cuda, call);
}

// options { k, threads, filter, precision } of a search of `rows` queries.
Status ParseSearchOptions(Napi::Object options, int64_t rows, bool on_cuda, IndexSearchCall* call) {
  Napi::Value k_value = options.Get("k");
  const double k = k_value.IsNumber() ? k_value.As<Napi::Number>().DoubleValue() : NAN;
  if (!k_value.IsNumber() || !std::isfinite(k) || std::floor(k) != k || k < 1 || k > kMaxInt32) {
    return Status(Code::kInvalidK, "options.k: " + (k_value.IsNumber() ? FormatNumber(k) : Describe(k_value)) +
                                       " is not an integer in 1..2147483647");
  }
  call->k = static_cast<int64_t>(k);
  VLK_RETURN_IF_ERROR(ReadThreads(options.Get("threads"), &call->threads));
  VLK_RETURN_IF_ERROR(ReadFilter(options.Get("filter"), rows, call));
  return ReadPrecision(options.Get("precision"), on_cuda ? Device::kCuda : Device::kCpu, &call->precision);
}

// options.device of an index: undefined or 'cpu' -> CPU; 'cuda' -> the GPU (f32 storage only:
// kInvalidArg; CUDA unusable: kNoDevice naming the reason); 'auto' -> the GPU when it is usable
// and the storage is f32, else the CPU. *residency: a fresh mirror holder for the GPU, else null.
Status ResolveIndexDevice(Napi::Value value, core::Storage storage, std::shared_ptr<CudaResidency>* residency) {
  residency->reset();
  Device device = Device::kCpu;
  VLK_RETURN_IF_ERROR(ReadDevice(value, &device));
  if (device == Device::kCpu) return Status::Ok();
  if (storage != core::Storage::kF32) {
    if (device == Device::kAuto) return Status::Ok();
    return Status(Code::kInvalidArg, std::string("options.device: 'cuda' needs storage 'f32' (got '") +
                                         core::storage_name(storage) + "'): the GPU scans its own bf16 codes of the fp32 rows");
  }
  bool use_cuda = false;
  VLK_RETURN_IF_ERROR(ResolveDevice(device, true, &use_cuda));
  if (use_cuda) *residency = std::make_shared<CudaResidency>(device == Device::kAuto);
  return Status::Ok();
}

// The search on a 'cuda' index's mirror, results written as FlatIndex::search writes them (ids,
// scores, counts, rescored 0: f32 storage re-scores nothing).
Status CudaIndexSearch(const core::FlatIndex& index, CudaResidency& residency, const IndexSearchCall& call,
                       const core::IndexSearchOut& out, const Context& ctx) {
  if (std::min(call.k, index.size()) > cuda::kMaxK) {  // before any upload (checked again below)
    return Status(Code::kInvalidArg, "k: " + std::to_string(call.k) + " is above " + std::to_string(cuda::kMaxK) +
                                         ", the largest k device 'cuda' selects (use device 'cpu' or 'auto')");
  }
  std::shared_ptr<const CudaMirror> m;
  VLK_RETURN_IF_ERROR(residency.Current(index, ctx.cancel, &m));
  VLK_RETURN_IF_ERROR(m->status);
  const MatrixView<const float>& queries = call.queries.view;
  const int64_t nq = queries.rows, k = call.k;
  const int64_t n = static_cast<int64_t>(m->ids.size());
  const int64_t kk = std::min(k, n);
  if (kk > cuda::kMaxK) {
    return Status(Code::kInvalidArg, "k: " + std::to_string(kk) + " is above " + std::to_string(cuda::kMaxK) +
                                         ", the largest k device 'cuda' selects (use device 'cpu' or 'auto')");
  }
  std::vector<int32_t> idx(static_cast<size_t>(nq * kk));
  std::vector<float> sc(static_cast<size_t>(nq * kk));
  std::vector<int32_t> cnt(static_cast<size_t>(nq), 0);
  if (n > 0) {
    core::SearchArgs a;
    a.queries = queries;
    a.gallery = MatrixView<const float>(nullptr, n, index.dim());  // resident: the shape only
    a.k = kk;
    a.metric = index.metric();
    // The filter's ids as mirror rows (ids not in the mirror are ignored, as on the CPU).
    std::vector<uint64_t> allow;
    std::vector<int64_t> excl_off;
    std::vector<int32_t> excl_rows;
    if (call.has_allow) {
      allow.assign(static_cast<size_t>((n + 63) / 64), 0);
      for (int64_t id : call.allow) {
        const int64_t r = m->row_of(id);
        if (r >= 0) allow[static_cast<size_t>(r >> 6)] |= uint64_t{1} << (r & 63);
      }
      a.filter.allow = allow.data();
    }
    if (!call.exclude_offsets.empty()) {
      excl_off.assign(static_cast<size_t>(nq) + 1, 0);
      for (int64_t i = 0; i < nq; ++i) {
        for (int64_t j = call.exclude_offsets[static_cast<size_t>(i)]; j < call.exclude_offsets[static_cast<size_t>(i) + 1];
             ++j) {
          const int64_t r = m->row_of(call.exclude_ids[static_cast<size_t>(j)]);
          if (r >= 0) excl_rows.push_back(static_cast<int32_t>(r));
        }
        excl_off[static_cast<size_t>(i) + 1] = static_cast<int64_t>(excl_rows.size());
      }
      a.filter.exclude_offsets = excl_off.data();
      a.filter.exclude_rows = excl_rows.empty() ? nullptr : excl_rows.data();
    }
    core::SearchOut so{idx.data(), sc.data(), cnt.data()};
    VLK_RETURN_IF_ERROR(cuda::search_resident(*m->gallery, a, so, ctx, call.precision));
  }
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      const int32_t r = j < kk ? idx[static_cast<size_t>(i * kk + j)] : -1;
      out.ids[i * k + j] = r >= 0 ? m->ids[static_cast<size_t>(r)] : -1;
      out.scores[i * k + j] = r >= 0 ? sc[static_cast<size_t>(i * kk + j)] : std::numeric_limits<float>::quiet_NaN();
    }
    if (out.counts != nullptr) out.counts[i] = cnt[static_cast<size_t>(i)];
    if (out.rescored != nullptr) out.rescored[i] = 0;
  }
  return Status::Ok();
}


// count x k results, V8-allocated (never external): the ids' 8-byte storage, scores and counts.
Status AllocateOutputs(Napi::Env env, int64_t count, int64_t k, Napi::ArrayBuffer* ids, Napi::Float32Array* scores,
                       Napi::Int32Array* counts, Napi::Int32Array* rescored) {
  int64_t total = 0;
  const std::string what = "result arrays of Q x k = " + std::to_string(count) + " x " + std::to_string(k);
  if (__builtin_mul_overflow(count, k, &total) || total > kMaxSafeInteger / 8) {
    return Status(Code::kOutOfMemory, what + " entries are too large");
  }
  // 8-byte id + 4-byte score per entry, two counts per query.
  if (Status s = CheckAllocation(what, total, 12, static_cast<uint64_t>(count) * 8); !s.ok()) return s;
  try {
    *ids = Napi::ArrayBuffer::New(env, static_cast<size_t>(total) * sizeof(int64_t));
    *scores = Napi::Float32Array::New(env, static_cast<size_t>(total));
    *counts = Napi::Int32Array::New(env, static_cast<size_t>(count));
    *rescored = Napi::Int32Array::New(env, static_cast<size_t>(count));
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, "cannot allocate " + what + " entries");
  }
  return Status::Ok();
}

// core's search (or, with a GPU mirror, the GPU's; an 'auto' index falls back to core when the GPU
// declines), then the ids' final form: *bigint (read after the search, so it covers every id of
// the snapshot) keeps int64; otherwise each id is rewritten in place as a double (exact).
Status RunSearch(const core::FlatIndex& index, CudaResidency* cuda, const IndexSearchCall& call,
                 const core::IndexSearchOut& out, const std::atomic<bool>& bigint_flag, const Context& ctx,
                 bool* bigint) {
  Status status;
  bool done = false;
  if (cuda != nullptr) {
    status = CudaIndexSearch(index, *cuda, call, out, ctx);
    const bool gpu_declined =
        status.code == Code::kOutOfMemory || status.code == Code::kInvalidArg || status.code == Code::kNoDevice;
    done = status.ok() || !(cuda->fallback() && gpu_declined);
  }
  if (!done) {
    const core::IndexFilter filter = call.filter();
    const bool filtered = call.has_allow || !call.exclude_offsets.empty();
    status = index.search(call.queries.view, call.k, out, ctx, filtered ? &filter : nullptr);
  }
  if (!status.ok()) return status;
  *bigint = bigint_flag.load();
  if (!*bigint) {
    const int64_t n = call.queries.view.rows * call.k;
    for (int64_t i = 0; i < n; ++i) {
      int64_t id = 0;
      std::memcpy(&id, out.ids + i, sizeof id);
      const double d = static_cast<double>(id);
      std::memcpy(out.ids + i, &d, sizeof d);
    }
  }
  return status;
}

Napi::Object MakeResult(Napi::Env env, Napi::ArrayBuffer ids, bool bigint, Napi::Value scores, Napi::Value counts,
                        Napi::Value rescored, int64_t k, int64_t count) {
  const size_t n = ids.ByteLength() / sizeof(int64_t);
  Napi::Object result = Napi::Object::New(env);
  if (bigint) {
    result.Set("ids", Napi::BigInt64Array::New(env, n, ids, 0));
  } else {
    result.Set("ids", Napi::Float64Array::New(env, n, ids, 0));
  }
  result.Set("scores", scores);
  result.Set("counts", counts);
  result.Set("rescored", rescored);
  result.Set("k", Napi::Number::New(env, static_cast<double>(k)));
  result.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  return result;
}

core::IndexSearchOut OutputsOf(Napi::ArrayBuffer ids, Napi::Float32Array scores, Napi::Int32Array counts,
                               Napi::Int32Array rescored) {
  core::IndexSearchOut out;
  out.ids = static_cast<int64_t*>(ids.Data());
  out.scores = scores.Data();
  out.counts = counts.Data();
  out.rescored = rescored.Data();
  return out;
}

// One async index search: holds its own reference to the index (close() or GC of the JS object
// mid-search only drops the object's reference), keeps queries and outputs referenced.
class IndexSearchWorker final : public AsyncJob {
 public:
  IndexSearchWorker(Napi::Env env, std::shared_ptr<CancelFlag> cancel, std::shared_ptr<core::FlatIndex> index,
                    std::shared_ptr<CudaResidency> cuda, BigIntFlag bigint_flag, const IndexSearchCall& call, Isa isa,
                    Napi::ArrayBuffer ids, Napi::Float32Array scores, Napi::Int32Array counts,
                    Napi::Int32Array rescored, std::unique_ptr<ComposeCall> compose = nullptr)
      : AsyncJob(env, std::move(cancel)),
        index_(std::move(index)),
        cuda_(std::move(cuda)),
        bigint_flag_(std::move(bigint_flag)),
        call_(call),
        isa_(isa),
        compose_(std::move(compose)) {
    if (compose_) {
      Keep(compose_->image.array);
      Keep(compose_->text.array);
      for (auto& w : compose_->keep) Keep(w);
      compose_->keep.clear();
      compose_->image.array = Napi::Float32Array();
      compose_->text.array = Napi::Float32Array();
      compose_->args.weights = compose_->args.mode == core::ComposeMode::kCombiner ? &compose_->weights : nullptr;
    } else {
      Keep(call.queries.array);
    }
    call_.queries.array = Napi::Float32Array();  // a handle of this call's scope; the view is what runs
    ids_slot_ = Keep(ids);
    scores_slot_ = Keep(scores);
    counts_slot_ = Keep(counts);
    rescored_slot_ = Keep(rescored);
    out_ = OutputsOf(ids, scores, counts, rescored);
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    if (compose_) {
      // composedSearch: the queries are composed here, on the same pool thread, then searched.
      const core::ComposeArgs& a = compose_->args;
      try {
        composed_.resize(static_cast<size_t>(a.b * a.d));
      } catch (const std::bad_alloc&) {
        return Status(Code::kOutOfMemory, "out of memory composing " + std::to_string(a.b) + " queries");
      }
      VLK_RETURN_IF_ERROR(core::compose(a, composed_.data(), MakeContext(compose_->threads, isa_, &cancel)));
      call_.queries.view = MatrixView<const float>{composed_.data(), a.b, a.d, a.d};
    }
    return RunSearch(*index_, cuda_.get(), call_, out_, *bigint_flag_, MakeContext(call_.threads, isa_, &cancel),
                     &bigint_);
  }

  Napi::Value Result(Napi::Env env) override {
    return MakeResult(env, Kept(ids_slot_).As<Napi::ArrayBuffer>(), bigint_, Kept(scores_slot_),
                      Kept(counts_slot_), Kept(rescored_slot_), call_.k, call_.queries.view.rows);
  }

 private:
  std::shared_ptr<core::FlatIndex> index_;
  std::shared_ptr<CudaResidency> cuda_;  // null: the CPU
  BigIntFlag bigint_flag_;
  IndexSearchCall call_;  // its queries view points into the kept queries array (or composed_)
  Isa isa_;
  std::unique_ptr<ComposeCall> compose_;  // composedSearch: image, text, weights
  std::vector<float> composed_;
  core::IndexSearchOut out_;
  bool bigint_ = false;
  size_t ids_slot_ = 0;
  size_t scores_slot_ = 0;
  size_t counts_slot_ = 0;
  size_t rescored_slot_ = 0;
};

}  // namespace

Napi::Function FlatIndexWrap::Define(Napi::Env env) {
  return DefineClass(env, "FlatIndex",
                     {
                         InstanceMethod<&FlatIndexWrap::Add>("add"),
                         InstanceMethod<&FlatIndexWrap::Remove>("remove"),
                         InstanceMethod<&FlatIndexWrap::Compact>("compact"),
                         InstanceMethod<&FlatIndexWrap::Has>("has"),
                         InstanceMethod<&FlatIndexWrap::Get>("get"),
                         InstanceMethod<&FlatIndexWrap::Size>("size"),
                         InstanceMethod<&FlatIndexWrap::MemoryUsage>("memoryUsage"),
                         InstanceMethod<&FlatIndexWrap::SearchSync>("searchSync"),
                         InstanceMethod<&FlatIndexWrap::SearchAsync>("searchAsync"),
                         InstanceMethod<&FlatIndexWrap::ComposedSearchAsync>("composedSearchAsync"),
                         InstanceMethod<&FlatIndexWrap::Options>("describe"),
                         InstanceMethod<&FlatIndexWrap::SetDevice>("setDevice"),
                         InstanceMethod<&FlatIndexWrap::SaveSync>("saveSync"),
                         InstanceMethod<&FlatIndexWrap::SaveAsync>("saveAsync"),
                         InstanceMethod<&FlatIndexWrap::ToBufferSync>("toBufferSync"),
                         InstanceMethod<&FlatIndexWrap::ToBufferAsync>("toBufferAsync"),
                         InstanceMethod<&FlatIndexWrap::Close>("close"),
                     });
}

FlatIndexWrap::FlatIndexWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<FlatIndexWrap>(info), bigint_ids_(std::make_shared<std::atomic<bool>>(false)) {
  Napi::Env env = info.Env();
  if (!info[4].IsExternal()) {
    ThrowStatus(env, Status(Code::kInvalidArg, "FlatIndex: create it with createFlatIndex(dim, metric, storage, approximate)"));
  }
  state_ = info[4].As<Napi::External<AddonState>>().Data();

  Napi::Value dim_value = info[0];
  const double dim = dim_value.IsNumber() ? dim_value.As<Napi::Number>().DoubleValue() : NAN;
  if (!dim_value.IsNumber() || !std::isfinite(dim) || std::floor(dim) != dim || dim < 1 || dim > kMaxInt32) {
    ThrowStatus(env, Status(Code::kInvalidArg, "options.dim: " +
                                                   (dim_value.IsNumber() ? FormatNumber(dim) : Describe(dim_value)) +
                                                   " is not an integer in 1..2147483647"));
  }
  dim_ = static_cast<int64_t>(dim);

  core::Metric metric = core::Metric::kInnerProduct;
  Napi::Value metric_value = info[1];
  const std::string name = metric_value.IsString() ? metric_value.As<Napi::String>().Utf8Value() : "";
  if (!metric_value.IsString() || !core::parse_metric(name.c_str(), &metric).ok()) {
    ThrowStatus(env, Status(Code::kInvalidArg, "options.metric: expected 'ip', 'cosine' or 'l2', got " +
                                                   (metric_value.IsString() ? "'" + name + "'" : Describe(metric_value))));
  }
  core::Storage storage = core::Storage::kF32;
  Napi::Value storage_value = info[2];
  if (!storage_value.IsUndefined()) {
    const std::string sname = storage_value.IsString() ? storage_value.As<Napi::String>().Utf8Value() : "";
    if (!storage_value.IsString() || !core::parse_storage(sname.c_str(), &storage).ok()) {
      ThrowStatus(env, Status(Code::kInvalidArg, "options.storage: expected 'f32', 'bf16' or 'i8', got " +
                                                     (storage_value.IsString() ? "'" + sname + "'" : Describe(storage_value))));
    }
  }
  Napi::Value approx_value = info[3];
  if (!approx_value.IsUndefined() && !approx_value.IsBoolean()) {
    ThrowStatus(env, Status(Code::kType, "options.approximate: expected a boolean, got " + Describe(approx_value)));
  }
  const bool approximate = approx_value.IsBoolean() && approx_value.As<Napi::Boolean>().Value();
  const Status opt = core::FlatIndex::validate_options(dim_, storage, approximate);
  if (!opt.ok()) ThrowStatus(env, Status(opt.code, "options." + opt.message));
  const Status dev = ResolveIndexDevice(info[5], storage, &cuda_);
  if (!dev.ok()) ThrowStatus(env, dev);
  try {
    index_ = std::make_shared<core::FlatIndex>(dim_, metric, storage, approximate);
  } catch (const std::bad_alloc&) {
    ThrowStatus(env, Status(Code::kOutOfMemory, "out of memory creating the index"));
  }
}

Napi::Value FlatIndexWrap::Adopt(Napi::Env env, AddonState& state, std::shared_ptr<core::FlatIndex> index) {
  Napi::Object obj = state.flat_index.New(
      {Napi::Number::New(env, static_cast<double>(index->dim())), Napi::String::New(env, core::metric_name(index->metric())),
       Napi::String::New(env, core::storage_name(index->storage())), Napi::Boolean::New(env, index->approximate()),
       Napi::External<AddonState>::New(env, &state)});
  FlatIndexWrap* wrap = FlatIndexWrap::Unwrap(obj);
  wrap->next_auto_id_ = index->next_auto_id();
  wrap->bigint_ids_->store(wrap->next_auto_id_ - 1 > kMaxSafeInteger);
  wrap->index_ = std::move(index);
  wrap->SyncExternalMemory(env);
  return obj;
}

void FlatIndexWrap::Finalize(Napi::BasicEnv env) {
  if (reported_bytes_ != 0) {
    int64_t total = 0;
    napi_adjust_external_memory(env, -reported_bytes_, &total);  // nothing to do if it fails here
    reported_bytes_ = 0;
  }
}

std::shared_ptr<core::FlatIndex> FlatIndexWrap::Live(Napi::Env env) const {
  if (!index_) ThrowStatus(env, Status(Code::kInvalidArg, "index is closed"));
  return index_;
}

void FlatIndexWrap::SyncExternalMemory(Napi::Env env) {
  const int64_t bytes = index_ ? index_->memory_usage() : 0;
  if (bytes != reported_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes - reported_bytes_);
    reported_bytes_ = bytes;
  }
}

Napi::Value FlatIndexWrap::Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  MatrixArg vectors;
  Status status = ReadRows(info[0], "vectors", dim_, &vectors);
  if (!status.ok()) ThrowStatus(env, status);
  const int64_t rows = vectors.view.rows;

  const bool has_ids = !info[1].IsUndefined();
  std::vector<int64_t> ids;
  bool bigint = false;
  if (has_ids) {
    status = ReadIds(info[1], rows, "vectors", &ids, &bigint);
    if (!status.ok()) ThrowStatus(env, status);
  } else if (!bigint_ids_->load() && rows > 0 && next_auto_id_ + (rows - 1) > kMaxSafeInteger) {
    ThrowStatus(env, Status(Code::kInvalidArg, "ids: automatic ids " + std::to_string(next_auto_id_) + ".." +
                                                   std::to_string(next_auto_id_ + rows - 1) +
                                                   " would pass 2^53 - 1 (pass BigInt64Array ids)"));
  }

  // Set before the add, so a search whose snapshot holds these ids reads it (see RunSearch); reset
  // if the add fails.
  const bool was_bigint = bigint_ids_->load();
  if (bigint) bigint_ids_->store(true);
  int64_t first_id = 0;
  try {
    status = index->add(vectors.view, has_ids && rows > 0 ? ids.data() : nullptr, &first_id);
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "add: out of memory");
  }
  if (!status.ok()) {
    bigint_ids_->store(was_bigint);
    ThrowStatus(env, status);
  }
  if (has_ids) {
    for (int64_t id : ids) {
      const int64_t next = id == INT64_MAX ? id : id + 1;
      if (next > next_auto_id_) next_auto_id_ = next;
    }
  } else if (rows > 0) {
    next_auto_id_ = first_id + rows;
  }
  SyncExternalMemory(env);
  if (has_ids) return env.Undefined();
  if (bigint_ids_->load()) return Napi::BigInt::New(env, first_id);
  return Napi::Number::New(env, static_cast<double>(first_id));
}

Napi::Value FlatIndexWrap::Remove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  std::vector<int64_t> ids;
  bool bigint = false;
  Status status = ReadIds(info[0], -1, "", &ids, &bigint);
  if (!status.ok()) ThrowStatus(env, status);
  status = index->remove(ids.data(), static_cast<int64_t>(ids.size()));
  if (!status.ok()) ThrowStatus(env, status);
  SyncExternalMemory(env);
  return Napi::Number::New(env, static_cast<double>(ids.size()));
}

Napi::Value FlatIndexWrap::Compact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  int64_t freed = 0;
  const Status status = index->compact(&freed);
  if (!status.ok()) ThrowStatus(env, status);
  SyncExternalMemory(env);
  return Napi::Number::New(env, static_cast<double>(freed));
}

Napi::Value FlatIndexWrap::Has(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  int64_t id = 0;
  Status status = ReadId(info[0], &id);
  if (!status.ok()) ThrowStatus(env, status);
  return Napi::Boolean::New(env, index->has(id));
}

Napi::Value FlatIndexWrap::Get(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  int64_t id = 0;
  Status status = ReadId(info[0], &id);
  if (!status.ok()) ThrowStatus(env, status);
  Napi::Float32Array out;
  try {
    out = Napi::Float32Array::New(env, static_cast<size_t>(dim_));
  } catch (const Napi::Error&) {
    ThrowStatus(env, Status(Code::kOutOfMemory, "get: cannot allocate " + std::to_string(dim_) + " floats"));
  }
  status = index->get(id, out.Data());
  if (!status.ok()) ThrowStatus(env, status);
  return out;
}

Napi::Value FlatIndexWrap::Options(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("dim", Napi::Number::New(env, static_cast<double>(index->dim())));
  o.Set("metric", Napi::String::New(env, core::metric_name(index->metric())));
  o.Set("storage", Napi::String::New(env, core::storage_name(index->storage())));
  o.Set("approximate", Napi::Boolean::New(env, index->approximate()));
  o.Set("device", Napi::String::New(env, cuda_ ? "cuda" : "cpu"));
  return o;
}

Napi::Value FlatIndexWrap::SetDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  std::shared_ptr<CudaResidency> residency;
  const Status status = ResolveIndexDevice(info[0], index->storage(), &residency);
  if (!status.ok()) ThrowStatus(env, status);
  cuda_ = std::move(residency);
  return Napi::String::New(env, cuda_ ? "cuda" : "cpu");
}

Napi::Value FlatIndexWrap::Size(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, static_cast<double>(Live(env)->size()));
}

Napi::Value FlatIndexWrap::MemoryUsage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, static_cast<double>(Live(env)->memory_usage()));
}

Napi::Value FlatIndexWrap::SearchSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  IndexSearchCall call;
  Status status = ParseSearch(info, dim_, cuda_ != nullptr, &call);
  if (!status.ok()) ThrowStatus(env, status);
  Isa isa = Isa::kScalar;
  status = active_isa(&isa);
  if (!status.ok()) ThrowStatus(env, status);
  Napi::ArrayBuffer ids;
  Napi::Float32Array scores;
  Napi::Int32Array counts, rescored;
  status = AllocateOutputs(env, call.queries.view.rows, call.k, &ids, &scores, &counts, &rescored);
  if (!status.ok()) ThrowStatus(env, status);
  bool bigint = false;
  try {
    status = RunSearch(*index, cuda_.get(), call, OutputsOf(ids, scores, counts, rescored), *bigint_ids_,
                       MakeContext(call.threads, isa, nullptr), &bigint);
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "out of memory");
  } catch (...) {
    status = Status(Code::kInternal, "unexpected native exception");
  }
  if (!status.ok()) ThrowStatus(env, status);
  return MakeResult(env, ids, bigint, scores, counts, rescored, call.k, call.queries.view.rows);
}

Napi::Value FlatIndexWrap::SearchAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = index_;
  if (!index) return RejectedPromise(env, Status(Code::kInvalidArg, "index is closed"));
  IndexSearchCall call;
  Status status = ParseSearch(info, dim_, cuda_ != nullptr, &call);
  if (!status.ok()) return RejectedPromise(env, status);
  std::shared_ptr<CancelFlag> cancel;
  status = ReadToken(info[2], *state_, &cancel);
  if (!status.ok()) return RejectedPromise(env, status);
  Isa isa = Isa::kScalar;
  status = active_isa(&isa);
  if (!status.ok()) return RejectedPromise(env, status);
  Napi::ArrayBuffer ids;
  Napi::Float32Array scores;
  Napi::Int32Array counts, rescored;
  status = AllocateOutputs(env, call.queries.view.rows, call.k, &ids, &scores, &counts, &rescored);
  if (!status.ok()) return RejectedPromise(env, status);

  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<IndexSearchWorker>(env, std::move(cancel), index, cuda_, bigint_ids_, call, isa, ids,
                                              scores, counts, rescored);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state_->runner->Submit(env, std::move(job));
}

// composedSearchAsync(image, text, composeOptions, searchOptions, token?): compose (as compose) and
// search (as searchAsync) in one job on the pool; the composed queries never reach JavaScript.
Napi::Value FlatIndexWrap::ComposedSearchAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = index_;
  if (!index) return RejectedPromise(env, Status(Code::kInvalidArg, "index is closed"));
  auto compose = std::make_unique<ComposeCall>();
  Status status = ParseComposeArgs(info[0], info[1], info[2], compose.get());
  if (status.ok() && compose->args.d != dim_) {
    status = Status(Code::kDimMismatch, "image and text have dim " + std::to_string(compose->args.d) +
                                            " but the index has dim " + std::to_string(dim_));
  }
  if (!status.ok()) return RejectedPromise(env, status);
  IndexSearchCall call;
  if (!info[3].IsObject() || info[3].IsArray() || info[3].IsFunction()) {
    return RejectedPromise(env, Status(Code::kType, "options: expected an object such as { k: 10 }, got " + Describe(info[3])));
  }
  status = ParseSearchOptions(info[3].As<Napi::Object>(), compose->args.b, cuda_ != nullptr, &call);
  if (!status.ok()) return RejectedPromise(env, status);
  call.queries.view = MatrixView<const float>{nullptr, compose->args.b, compose->args.d, compose->args.d};
  std::shared_ptr<CancelFlag> cancel;
  status = ReadToken(info[4], *state_, &cancel);
  if (!status.ok()) return RejectedPromise(env, status);
  Isa isa = Isa::kScalar;
  status = active_isa(&isa);
  if (!status.ok()) return RejectedPromise(env, status);
  Napi::ArrayBuffer ids;
  Napi::Float32Array scores;
  Napi::Int32Array counts, rescored;
  status = AllocateOutputs(env, compose->args.b, call.k, &ids, &scores, &counts, &rescored);
  if (!status.ok()) return RejectedPromise(env, status);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<IndexSearchWorker>(env, std::move(cancel), index, cuda_, bigint_ids_, call, isa, ids,
                                              scores, counts, rescored, std::move(compose));
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state_->runner->Submit(env, std::move(job));
}

Napi::Value FlatIndexWrap::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (index_) {
    index_.reset();
    cuda_.reset();  // the GPU mirror goes with the last search that holds it
    SyncExternalMemory(env);
  }
  return env.Undefined();
}

Napi::Value CreateFlatIndex(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  return state.flat_index.New(
      {info[0], info[1], info[2], info[3], Napi::External<AddonState>::New(env, &state), info[4]});
}

}  // namespace binding
}  // namespace vlk
