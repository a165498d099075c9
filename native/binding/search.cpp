// Search entry points (binding). See search.hpp. Parsing repeats lib/search.ts's checks with the
// same codes (lib runs first and gives the friendlier messages); results are V8-allocated typed
// arrays created here on the JS thread, which core (or the pool job) fills in place.
#include "search.hpp"

#include <cmath>
#include <memory>
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
#include "common/top_k_call.hpp"
#include "cuda/common/cuda_api.hpp"
#include "isa/isa.hpp"
#include "search/search.hpp"
#include "search/search_quantized.hpp"

namespace vlk {
namespace binding {

namespace {

// Filter data converted from options.exclude / options.allow. Small (O(Q) + O(N / 64)) copies,
// owned by the call and then by its job, so the JS arrays may change after the call returns.
struct FilterData {
  std::vector<int64_t> exclude_offsets;
  std::vector<int32_t> exclude_rows;
  std::vector<uint64_t> allow;

  void Attach(core::SearchFilter* f) const {
    f->exclude_offsets = exclude_offsets.empty() ? nullptr : exclude_offsets.data();
    f->exclude_rows = exclude_rows.empty() ? nullptr : exclude_rows.data();
    f->allow = allow.empty() ? nullptr : allow.data();
  }
};

struct SearchCall {
  MatrixArg queries;
  MatrixArg gallery;
  core::SearchArgs args;
  int threads = 1;
  std::shared_ptr<FilterData> filter;  // null: no filter
  Device device = Device::kCpu;        // as requested (options.device)
  cuda::Precision precision = cuda::Precision::kExact;  // the GPU scan (device 'cuda')
  core::Storage storage = core::Storage::kF32;           // the CPU scan: kF32 (core::search) or
                                                         // bf16 / i8 codes (core::search_reduced)
  bool use_cuda = false;               // the backend it resolved to (ResolveDevice)
};

// options.precision of search: undefined or 'exact'; 'bf16' on the CPU (an exact re-scored bf16
// scan, core::search_reduced) or with device 'cuda' (the GPU's approximate tensor-core scan);
// 'i8' on the CPU only. Neither with device 'auto', where the backend (and so what bf16 means)
// would depend on the machine. lib/args.ts readSearchPrecision says the same.
Status ReadSearchPrecision(Napi::Value value, Device device, cuda::Precision* precision, core::Storage* storage) {
  *precision = cuda::Precision::kExact;
  *storage = core::Storage::kF32;
  if (value.IsUndefined()) return Status::Ok();
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (name == "exact") return Status::Ok();
  if (name != "bf16" && name != "i8") {
    return Status(Code::kInvalidArg, "options.precision: expected 'exact', 'bf16' or 'i8', got " +
                                         (value.IsString() ? "'" + name + "'" : Describe(value)));
  }
  if (device == Device::kAuto) {
    return Status(Code::kInvalidArg, "options.precision: '" + name +
                                         "' needs device 'cpu' or 'cuda', not 'auto' (bf16 is exact on the CPU, "
                                         "approximate on the GPU; i8 is CPU only), so that a result's precision "
                                         "never depends on the machine");
  }
  if (name == "i8") {
    if (device != Device::kCpu) {
      return Status(Code::kInvalidArg, std::string("options.precision: 'i8' precision is for device 'cpu' (got device '") +
                                           DeviceName(device) + "')");
    }
    *storage = core::Storage::kI8;
    return Status::Ok();
  }
  if (device == Device::kCuda) {
    *precision = cuda::Precision::kBf16;
  } else {
    *storage = core::Storage::kBF16;
  }
  return Status::Ok();
}

// options.exclude: Int32Array of Q rows (-1: none), or { offsets: Int32Array(Q + 1), rows }.
Status ReadExclude(Napi::Value value, int64_t q, FilterData* f) {
  f->exclude_offsets.assign(static_cast<size_t>(q) + 1, 0);
  if (value.IsTypedArray()) {
    const int32_t* rows = nullptr;
    size_t n = 0;
    VLK_RETURN_IF_ERROR(ReadInt32s(value, "options.exclude", &rows, &n));
    if (static_cast<int64_t>(n) != q) {
      return Status(Code::kShape, "options.exclude: length " + std::to_string(n) +
                                      " is not the number of queries (" + std::to_string(q) +
                                      "); use { offsets, rows } for several rows per query");
    }
    for (int64_t i = 0; i < q; ++i) {
      if (rows[i] >= 0) f->exclude_rows.push_back(rows[i]);
      f->exclude_offsets[static_cast<size_t>(i) + 1] = static_cast<int64_t>(f->exclude_rows.size());
    }
    return Status::Ok();
  }
  if (!IsObject(value) || value.IsArray()) {
    return Status(Code::kType, "options.exclude: expected an Int32Array (one row per query) or "
                               "{ offsets, rows }, got " + Describe(value));
  }
  Napi::Object o = value.As<Napi::Object>();
  const int32_t* off = nullptr;
  const int32_t* rows = nullptr;
  size_t n_off = 0, n_rows = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(o.Get("offsets"), "options.exclude.offsets", &off, &n_off));
  VLK_RETURN_IF_ERROR(ReadInt32s(o.Get("rows"), "options.exclude.rows", &rows, &n_rows));
  if (static_cast<int64_t>(n_off) != q + 1) {
    return Status(Code::kShape, "options.exclude.offsets: length " + std::to_string(n_off) +
                                    " is not queries + 1 (" + std::to_string(q + 1) + ")");
  }
  if (off[0] != 0 || off[q] != static_cast<int64_t>(n_rows)) {
    return Status(Code::kShape, "options.exclude.offsets: must start at 0 and end at rows.length (" +
                                    std::to_string(n_rows) + "), got " + std::to_string(off[0]) +
                                    " .. " + std::to_string(off[q]));
  }
  for (int64_t i = 0; i <= q; ++i) f->exclude_offsets[static_cast<size_t>(i)] = off[i];
  f->exclude_rows.assign(rows, rows + n_rows);
  return Status::Ok();
}

// options.allow: Uint8Array mask of N bytes (non-zero: allowed), or Int32Array of allowed rows.
Status ReadAllow(Napi::Value value, int64_t n, FilterData* f) {
  f->allow.assign(static_cast<size_t>((n + 63) / 64), 0);
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array m = value.As<Napi::Uint8Array>();
    if (static_cast<int64_t>(m.ElementLength()) != n) {
      return Status(Code::kShape, "options.allow: mask length " + std::to_string(m.ElementLength()) +
                                      " is not the gallery's row count (" + std::to_string(n) + ")");
    }
    // Data(), not ArrayBuffer().ByteLength(), which throws for a SharedArrayBuffer-backed mask.
    if (n > 0 && m.Data() == nullptr) {
      return Status(Code::kInvalidArg, "options.allow: the buffer is detached");
    }
    const uint8_t* bytes = m.Data();
    for (int64_t r = 0; r < n; ++r) {
      if (bytes[r] != 0) f->allow[static_cast<size_t>(r >> 6)] |= uint64_t{1} << (r & 63);
    }
    return Status::Ok();
  }
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    return Status(Code::kType, "options.allow: expected a Uint8Array mask of N bytes or an "
                               "Int32Array of rows, got " + Describe(value));
  }
  const int32_t* rows = nullptr;
  size_t count = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(value, "options.allow", &rows, &count));
  for (size_t i = 0; i < count; ++i) {
    if (rows[i] < 0 || rows[i] >= n) {
      return Status(Code::kInvalidArg, "options.allow: row " + std::to_string(rows[i]) +
                                           " at index " + std::to_string(i) + " is outside 0.." +
                                           std::to_string(n - 1));
    }
    f->allow[static_cast<size_t>(rows[i] >> 6)] |= uint64_t{1} << (rows[i] & 63);
  }
  return Status::Ok();
}

// queries, gallery, options -> core arguments. Order of checks (and so the code reported for an
// input with several faults) matches lib/search.ts.
Status ParseSearch(const Napi::CallbackInfo& info, SearchCall* call) {
  Napi::Value options_value = info[2];
  if (!options_value.IsObject() || options_value.IsArray() || options_value.IsFunction()) {
    return Status(Code::kType, "options: expected an object such as { k: 10 }, got " + Describe(options_value));
  }
  Napi::Object options = options_value.As<Napi::Object>();

  VLK_RETURN_IF_ERROR(ReadQueriesAndGallery(info[0], info[1], options, &call->queries, &call->gallery));
  const MatrixView<const float>& q = call->queries.view;
  const MatrixView<const float>& g = call->gallery.view;

  // options.tokens (token-max search): items of `tokens` consecutive gallery rows.
  int64_t tokens = 1;
  if (!options.Get("tokens").IsUndefined()) {
    VLK_RETURN_IF_ERROR(ReadSize(options.Get("tokens"), "options.tokens", &tokens));
    if (tokens < 1 || g.rows % tokens != 0) {
      return Status(Code::kShape, "gallery: " + std::to_string(g.rows) + " rows are not a whole number of items of " +
                                      std::to_string(tokens) + " tokens (options.tokens)");
    }
  }
  call->args.tokens = tokens;
  const int64_t items = g.rows / tokens;
  bool clamp = false;
  VLK_RETURN_IF_ERROR(ReadFlag(options.Get("clamp"), "options.clamp", false, &clamp));
  const std::string range = " is not an integer in 1..N (N = " + std::to_string(items) + ")";
  Napi::Value k_value = options.Get("k");
  if (!k_value.IsNumber()) return Status(Code::kInvalidK, "options.k: " + Describe(k_value) + range);
  const double k = k_value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(k) || std::floor(k) != k || k < 1) {
    return Status(Code::kInvalidK, "options.k: " + FormatNumber(k) + range);
  }
  if (k > static_cast<double>(items)) {
    if (!clamp) {
      return Status(Code::kInvalidK, "options.k: " + FormatNumber(k) + range +
                                         "; pass clamp: true to search with k = N");
    }
    call->args.k = items;
  } else {
    call->args.k = static_cast<int64_t>(k);
  }

  call->args.metric = core::Metric::kInnerProduct;
  VLK_RETURN_IF_ERROR(ReadMetric(options.Get("metric"), &call->args.metric));

  VLK_RETURN_IF_ERROR(ReadThreads(options.Get("threads"), &call->threads));
  VLK_RETURN_IF_ERROR(ReadDevice(options.Get("device"), &call->device));
  VLK_RETURN_IF_ERROR(ReadSearchPrecision(options.Get("precision"), call->device, &call->precision, &call->storage));

  call->args.queries = q;
  call->args.gallery = g;

  Napi::Value exclude_value = options.Get("exclude");
  Napi::Value allow_value = options.Get("allow");
  if (!exclude_value.IsUndefined() || !allow_value.IsUndefined()) {
    try {
      call->filter = std::make_shared<FilterData>();
      if (!exclude_value.IsUndefined()) {
        VLK_RETURN_IF_ERROR(ReadExclude(exclude_value, q.rows, call->filter.get()));
      }
      if (!allow_value.IsUndefined()) VLK_RETURN_IF_ERROR(ReadAllow(allow_value, items, call->filter.get()));
    } catch (const std::bad_alloc&) {
      return Status(Code::kOutOfMemory, "out of memory reading the filter");
    }
    call->filter->Attach(&call->args.filter);
  }
  VLK_RETURN_IF_ERROR(core::validate_search(call->args));
  // 'auto' sends filtered searches to the CPU; 'cuda' passes them on (the GPU path answers
  // kInvalidArg when it cannot filter).
  return ResolveDevice(call->device, !call->args.filter.active() && tokens == 1, &call->use_cuda);
}


}  // namespace

// The core (or CUDA) call both paths run; it owns its copy of the arguments and shares the filter
// data. With device 'auto', a call the GPU path cannot take (device memory, k or N beyond its
// limits, the device gone) runs on the CPU instead; every output entry is rewritten then. On the
// CPU, precision 'bf16' / 'i8' quantizes the gallery for the call and scans the codes, then
// re-scores in fp32 (core::search_reduced): the same results as core::search, bit for bit.
static auto SearchRun(const SearchCall& call) {
  return [args = call.args, filter = call.filter, threads = call.threads, use_cuda = call.use_cuda,
          fallback = call.device == Device::kAuto, precision = call.precision,
          storage = call.storage](Isa isa, const CancelFlag* cancel, const TopKBuffers& b) {
    core::SearchOut out;
    out.indices = b.indices;
    out.scores = b.scores;
    out.counts = b.counts;
    const Context ctx = MakeContext(threads, isa, cancel);
    if (use_cuda) {
      Status s = cuda::search(args, out, ctx, precision);
      const bool gpu_declined =
          s.code == Code::kOutOfMemory || s.code == Code::kInvalidArg || s.code == Code::kNoDevice;
      if (!fallback || !gpu_declined) return s;
    }
    if (storage != core::Storage::kF32) return core::search_reduced(args, storage, out, ctx);
    return core::search(args, out, ctx);
  };
}

Napi::Value SearchSync(const Napi::CallbackInfo& info, AddonState&) {
  Napi::Env env = info.Env();
  SearchCall call;
  Status status = ParseSearch(info, &call);
  if (!status.ok()) ThrowStatus(env, status);
  return TopKSync(env, call.args.queries.rows, call.args.k, SearchRun(call));
}

Napi::Value SearchAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  SearchCall call;
  Status status = ParseSearch(info, &call);
  if (!status.ok()) return RejectedPromise(env, status);
  return TopKAsync(env, state, info[3], call.args.queries.rows, call.args.k,
                   {call.queries.array, call.gallery.array}, SearchRun(call));
}

}  // namespace binding
}  // namespace vlk
