// Top-k merge entry points (binding). See merge_top_k.hpp. Parsing repeats lib/merge_top_k.ts's
// structural checks with the same codes and adds the per-entry ones (counts in 0..k, integral
// Float64 ids, id + offset in range) while copying the valid ids into one int64 vector. Results
// are V8-allocated typed arrays created here on the JS thread, which core (or the pool job) fills.
#include "merge_top_k.hpp"

#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/alloc_limit.hpp"
#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/context.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "search/merge_top_k.hpp"
#include "search/search.hpp"

namespace vlk {
namespace binding {

namespace {

// Ids a Float64Array holds exactly: integers within +-2^53.
constexpr int64_t kMaxExactId = int64_t{1} << 53;
constexpr double kMaxExactIdDouble = 9007199254740992.0;
// counts are an Int32Array, so k (their largest value) must fit one.
constexpr double kMaxK = 2147483647.0;

enum class IdType { kInt32, kFloat64, kBigInt64 };

// One partial after the structural checks (views into its JS arrays, valid on the JS thread).
struct PartialArg {
  IdType type = IdType::kInt32;
  Napi::TypedArray indices;
  Napi::Float32Array scores;
  Napi::Int32Array counts;  // empty when absent
  bool has_counts = false;
  int64_t k = 0;
  int64_t offset = 0;
};

struct MergeCall {
  core::MergeTopKArgs args;                 // parts points into `parts`
  std::vector<core::TopKPartial> parts;     // ids / counts point into the vectors below
  std::vector<int64_t> ids;                 // each partial's ids + offset (invalid entries: -1)
  std::vector<int32_t> counts;              // the counts of the partials that give them
  std::vector<Napi::Float32Array> scores;   // read in place; an async job keeps them
  int threads = 1;
  bool bigint = false;                      // ids come back as a BigInt64Array
};

// The first element of an id array (TypedArrayOf<T>::Data() includes the byteOffset).
void* ElementData(const Napi::TypedArray& a) {
  switch (a.TypedArrayType()) {
    case napi_int32_array: return a.As<Napi::Int32Array>().Data();
    case napi_float64_array: return a.As<Napi::Float64Array>().Data();
    case napi_bigint64_array: return a.As<Napi::BigInt64Array>().Data();
    default: return nullptr;
  }
}

std::string Name(int64_t p) { return "partials[" + std::to_string(p) + "]"; }

bool IsTyped(Napi::Value v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

// "name: length L is not count x k = Q x K = E" (kShape) unless the length is right.
Status CheckLength(const std::string& name, size_t length, int64_t count, int64_t k) {
  const int64_t expected = count * k;  // checked against overflow by the caller
  if (static_cast<int64_t>(length) == expected) return Status::Ok();
  return Status(Code::kShape, name + ": length " + std::to_string(length) + " is not count x k = " +
                                  std::to_string(count) + " x " + std::to_string(k) + " = " +
                                  std::to_string(expected));
}

// Phase 1 for partials[p]: types, k, count, array lengths, offset. `queries` is partials[0].count
// (p = 0 sets it). Order of checks matches lib/merge_top_k.ts.
Status ReadPartial(Napi::Value value, int64_t p, int64_t* queries, PartialArg* out) {
  const std::string name = Name(p);
  if (!value.IsObject() || value.IsArray() || value.IsFunction() || value.IsTypedArray()) {
    return Status(Code::kType, name + ": expected a top-k result { indices, scores, k, count }, got " +
                                   Describe(value));
  }
  Napi::Object o = value.As<Napi::Object>();
  int64_t count = 0;
  VLK_RETURN_IF_ERROR(ReadSize(o.Get("k"), name + ".k", &out->k));
  VLK_RETURN_IF_ERROR(ReadSize(o.Get("count"), name + ".count", &count));
  if (p == 0) {
    *queries = count;
  } else if (count != *queries) {
    return Status(Code::kShape, name + ".count: " + std::to_string(count) + " differs from partials[0].count " +
                                    std::to_string(*queries) + " (every partial must hold the same queries)");
  }
  int64_t total = 0;
  if (__builtin_mul_overflow(count, out->k, &total) || total > kMaxSafeInteger) {
    return Status(Code::kShape, name + ": count x k = " + std::to_string(count) + " x " + std::to_string(out->k) +
                                    " overflows the largest safe integer");
  }

  Napi::Value indices = o.Get("indices");
  if (IsTyped(indices, napi_int32_array)) {
    out->type = IdType::kInt32;
  } else if (IsTyped(indices, napi_float64_array)) {
    out->type = IdType::kFloat64;
  } else if (IsTyped(indices, napi_bigint64_array)) {
    out->type = IdType::kBigInt64;
  } else {
    return Status(Code::kType, name + ".indices: expected an Int32Array, a Float64Array or a BigInt64Array, got " +
                                   Describe(indices));
  }
  out->indices = indices.As<Napi::TypedArray>();
  VLK_RETURN_IF_ERROR(CheckLength(name + ".indices", out->indices.ElementLength(), count, out->k));

  Napi::Value scores = o.Get("scores");
  if (!IsTyped(scores, napi_float32_array)) {
    return Status(Code::kType, name + ".scores: expected a Float32Array, got " + Describe(scores));
  }
  out->scores = scores.As<Napi::Float32Array>();
  VLK_RETURN_IF_ERROR(CheckLength(name + ".scores", out->scores.ElementLength(), count, out->k));

  Napi::Value counts = o.Get("counts");
  out->has_counts = !counts.IsUndefined();
  if (out->has_counts) {
    if (!IsTyped(counts, napi_int32_array)) {
      return Status(Code::kType, name + ".counts: expected an Int32Array, got " + Describe(counts));
    }
    out->counts = counts.As<Napi::Int32Array>();
    if (static_cast<int64_t>(out->counts.ElementLength()) != count) {
      return Status(Code::kShape, name + ".counts: length " + std::to_string(out->counts.ElementLength()) +
                                      " is not count (" + std::to_string(count) + ")");
    }
  }

  Napi::Value offset = o.Get("offset");
  if (!offset.IsUndefined()) {
    const double v = offset.IsNumber() ? offset.As<Napi::Number>().DoubleValue() : NAN;
    if (!offset.IsNumber() || !std::isfinite(v) || std::floor(v) != v || std::fabs(v) > kMaxExactIdDouble) {
      return Status(Code::kInvalidArg, name + ".offset: " + (offset.IsNumber() ? FormatNumber(v) : Describe(offset)) +
                                           " is not an integer within +-2^53");
    }
    out->offset = static_cast<int64_t>(v);
  }
  return Status::Ok();
}

// The raw id at `i` of a partial's indices, checked (a Float64 id must be an integer within
// +-2^53), then + offset (within int64, and within +-2^53 unless the output is a BigInt64Array).
Status ReadId(const PartialArg& a, const void* data, int64_t p, int64_t i, bool bigint, int64_t* out) {
  int64_t id = 0;
  switch (a.type) {
    case IdType::kInt32:
      id = static_cast<const int32_t*>(data)[i];
      break;
    case IdType::kBigInt64:
      id = static_cast<const int64_t*>(data)[i];
      break;
    case IdType::kFloat64: {
      const double d = static_cast<const double*>(data)[i];
      if (!(std::floor(d) == d && std::fabs(d) <= kMaxExactIdDouble)) {
        return Status(Code::kInvalidArg, Name(p) + ".indices[" + std::to_string(i) + "]: " + FormatNumber(d) +
                                             " is not an integer within +-2^53");
      }
      id = static_cast<int64_t>(d);
      break;
    }
  }
  if (__builtin_add_overflow(id, a.offset, out)) {
    return Status(Code::kInvalidArg, Name(p) + ".indices[" + std::to_string(i) + "] + offset = " +
                                         std::to_string(id) + " + " + std::to_string(a.offset) +
                                         " overflows a 64-bit id");
  }
  if (!bigint && (*out > kMaxExactId || *out < -kMaxExactId)) {
    return Status(Code::kInvalidArg, Name(p) + ".indices[" + std::to_string(i) + "] + offset = " +
                                         std::to_string(*out) + " is beyond +-2^53, which a Float64Array cannot "
                                         "hold exactly (pass BigInt64Array indices)");
  }
  return Status::Ok();
}

// Phase 2: copies every partial's valid ids (+ offset) and its counts, checking each, and points
// the core views at the copies.
Status CopyPartials(const std::vector<PartialArg>& parts, int64_t queries, MergeCall* call) {
  size_t total_ids = 0;
  size_t total_counts = 0;
  for (const PartialArg& a : parts) {
    total_ids += static_cast<size_t>(queries * a.k);
    if (a.has_counts) total_counts += static_cast<size_t>(queries);
  }
  try {
    call->ids.assign(total_ids, -1);
    call->counts.assign(total_counts, 0);
    call->parts.assign(parts.size(), core::TopKPartial());
    call->scores.reserve(parts.size());
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "partials: cannot copy " + std::to_string(total_ids) + " ids");
  }
  size_t id_at = 0;
  size_t count_at = 0;
  for (size_t s = 0; s < parts.size(); ++s) {
    const PartialArg& a = parts[s];
    const int64_t p = static_cast<int64_t>(s);
    int64_t* ids = call->ids.data() + id_at;
    int32_t* counts = a.has_counts ? call->counts.data() + count_at : nullptr;
    const void* raw = a.indices.ElementLength() > 0 ? ElementData(a.indices) : nullptr;
    const int32_t* given = a.has_counts && queries > 0 ? a.counts.Data() : nullptr;
    for (int64_t q = 0; q < queries; ++q) {
      int64_t valid = a.k;
      if (counts != nullptr) {
        const int32_t c = given[q];
        if (c < 0 || c > a.k) {
          return Status(Code::kInvalidArg, Name(p) + ".counts[" + std::to_string(q) + "]: " + std::to_string(c) +
                                               " is outside 0.." + std::to_string(a.k));
        }
        counts[q] = c;
        valid = c;
      }
      for (int64_t j = 0; j < valid; ++j) {
        VLK_RETURN_IF_ERROR(ReadId(a, raw, p, q * a.k + j, call->bigint, &ids[q * a.k + j]));
      }
    }
    core::TopKPartial& t = call->parts[s];
    t.ids = ids;
    t.scores = a.scores.ElementLength() > 0 ? a.scores.Data() : nullptr;
    t.counts = counts;
    t.k = a.k;
    call->scores.push_back(a.scores);
    id_at += static_cast<size_t>(queries * a.k);
    if (a.has_counts) count_at += static_cast<size_t>(queries);
  }
  return Status::Ok();
}

// partials, options -> core arguments. Order of checks (and so the code reported for an input with
// several faults) matches lib/merge_top_k.ts.
Status ParseMerge(const Napi::CallbackInfo& info, MergeCall* call) {
  Napi::Value partials_value = info[0];
  if (!partials_value.IsArray()) {
    return Status(Code::kType, "partials: expected an array of top-k results, got " + Describe(partials_value));
  }
  Napi::Array partials = partials_value.As<Napi::Array>();
  const uint32_t n = partials.Length();
  if (n == 0) return Status(Code::kInvalidArg, "partials: empty array (need at least one top-k result)");
  Napi::Value options_value = info[1];
  if (!options_value.IsObject() || options_value.IsArray() || options_value.IsFunction()) {
    return Status(Code::kType, "options: expected an object such as { k: 10 }, got " + Describe(options_value));
  }
  Napi::Object options = options_value.As<Napi::Object>();

  std::vector<PartialArg> parts(n);
  int64_t queries = 0;
  for (uint32_t p = 0; p < n; ++p) {
    VLK_RETURN_IF_ERROR(ReadPartial(partials.Get(p), p, &queries, &parts[p]));
    if (parts[p].type == IdType::kBigInt64) call->bigint = true;
  }

  Napi::Value k_value = options.Get("k");
  const double k = k_value.IsNumber() ? k_value.As<Napi::Number>().DoubleValue() : NAN;
  if (!k_value.IsNumber() || !std::isfinite(k) || std::floor(k) != k || k < 1 || k > kMaxK) {
    return Status(Code::kInvalidK, "options.k: " + (k_value.IsNumber() ? FormatNumber(k) : Describe(k_value)) +
                                       " is not an integer in 1..2147483647");
  }
  call->args.k = static_cast<int64_t>(k);

  call->args.metric = core::Metric::kInnerProduct;
  VLK_RETURN_IF_ERROR(ReadMetric(options.Get("metric"), &call->args.metric));

  VLK_RETURN_IF_ERROR(CopyPartials(parts, queries, call));
  call->args.parts = call->parts.data();
  call->args.nparts = static_cast<int64_t>(call->parts.size());
  call->args.queries = queries;
  call->threads = global_pool().size();
  return Status::Ok();
}

// Q x k results, V8-allocated (never external) so every embedder accepts them. ids: a
// BigInt64Array or a Float64Array (both 8 bytes an entry; core writes int64 into either).
Status AllocateOutputs(Napi::Env env, int64_t count, int64_t k, bool bigint, Napi::TypedArray* ids,
                       Napi::Float32Array* scores, Napi::Int32Array* counts) {
  int64_t total = 0;
  const std::string what = "result arrays of Q x k = " + std::to_string(count) + " x " + std::to_string(k);
  if (__builtin_mul_overflow(count, k, &total) || total > kMaxSafeInteger / 8) {
    return Status(Code::kOutOfMemory, what + " entries are too large");
  }
  // 8-byte id + 4-byte score per entry, a count per query.
  if (Status s = CheckAllocation(what, total, 12, static_cast<uint64_t>(count) * 4); !s.ok()) return s;
  try {
    if (bigint) {
      *ids = Napi::BigInt64Array::New(env, static_cast<size_t>(total));
    } else {
      *ids = Napi::Float64Array::New(env, static_cast<size_t>(total));
    }
    *scores = Napi::Float32Array::New(env, static_cast<size_t>(total));
    *counts = Napi::Int32Array::New(env, static_cast<size_t>(count));
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, "cannot allocate " + what + " entries");
  }
  return Status::Ok();
}

// Where core writes the ids: the output array's storage (8-byte elements, 8-byte aligned).
int64_t* IdStorage(const Napi::TypedArray& ids) {
  return ids.ElementLength() > 0 ? static_cast<int64_t*>(ElementData(ids)) : nullptr;
}

// A Float64Array output: core wrote int64 ids into its storage; rewrite each as a double in place
// (exact: every id was checked to lie within +-2^53; padding -1 stays -1).
void IdsToDoubles(int64_t* storage, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t id = 0;
    std::memcpy(&id, storage + i, sizeof id);
    const double d = static_cast<double>(id);
    std::memcpy(storage + i, &d, sizeof d);
  }
}

Status RunMerge(const MergeCall& call, const core::MergeTopKOut& out, const CancelFlag* cancel) {
  Context ctx;
  ctx.pool = &global_pool();
  ctx.threads = call.threads;
  ctx.cancel = cancel;
  Status status = core::merge_top_k(call.args, out, ctx);
  if (status.ok() && !call.bigint) IdsToDoubles(out.ids, call.args.queries * call.args.k);
  return status;
}

Napi::Object MakeResult(Napi::Env env, Napi::Value ids, Napi::Value scores, Napi::Value counts, int64_t k,
                        int64_t count) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("ids", ids);
  result.Set("scores", scores);
  result.Set("counts", counts);
  result.Set("k", Napi::Number::New(env, static_cast<double>(k)));
  result.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  return result;
}

// core::merge_top_k for one async call: owns the id and count copies, keeps the score inputs and
// the outputs referenced until it settles.
class MergeTopKWorker final : public AsyncJob {
 public:
  MergeTopKWorker(Napi::Env env, std::shared_ptr<CancelFlag> cancel, MergeCall call, Napi::TypedArray ids,
                  Napi::Float32Array scores, Napi::Int32Array counts)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)) {
    // Moving the vectors keeps their storage, so the views in call_.parts stay valid.
    for (const Napi::Float32Array& s : call_.scores) Keep(s);
    call_.scores.clear();
    ids_slot_ = Keep(ids);
    scores_slot_ = Keep(scores);
    counts_slot_ = Keep(counts);
    out_.ids = IdStorage(ids);
    out_.scores = scores.ElementLength() > 0 ? scores.Data() : nullptr;
    out_.counts = counts.ElementLength() > 0 ? counts.Data() : nullptr;
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return RunMerge(call_, out_, &cancel); }

  Napi::Value Result(Napi::Env env) override {
    return MakeResult(env, Kept(ids_slot_), Kept(scores_slot_), Kept(counts_slot_), call_.args.k,
                      call_.args.queries);
  }

 private:
  MergeCall call_;
  core::MergeTopKOut out_;
  size_t ids_slot_ = 0;
  size_t scores_slot_ = 0;
  size_t counts_slot_ = 0;
};

}  // namespace

Napi::Value MergeTopKSync(const Napi::CallbackInfo& info, AddonState&) {
  Napi::Env env = info.Env();
  MergeCall call;
  Status status;
  try {
    status = ParseMerge(info, &call);
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "out of memory reading the partials");
  }
  if (!status.ok()) ThrowStatus(env, status);
  Napi::TypedArray ids;
  Napi::Float32Array scores;
  Napi::Int32Array counts;
  status = AllocateOutputs(env, call.args.queries, call.args.k, call.bigint, &ids, &scores, &counts);
  if (!status.ok()) ThrowStatus(env, status);

  core::MergeTopKOut out;
  out.ids = IdStorage(ids);
  out.scores = scores.ElementLength() > 0 ? scores.Data() : nullptr;
  out.counts = counts.ElementLength() > 0 ? counts.Data() : nullptr;
  try {
    status = RunMerge(call, out, nullptr);
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "out of memory");
  } catch (...) {
    status = Status(Code::kInternal, "unexpected native exception");
  }
  if (!status.ok()) ThrowStatus(env, status);
  return MakeResult(env, ids, scores, counts, call.args.k, call.args.queries);
}

Napi::Value MergeTopKAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  MergeCall call;
  Status status;
  try {
    status = ParseMerge(info, &call);
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "out of memory reading the partials");
  }
  if (!status.ok()) return RejectedPromise(env, status);
  std::shared_ptr<CancelFlag> cancel;
  status = ReadToken(info[2], state, &cancel);
  if (!status.ok()) return RejectedPromise(env, status);

  Napi::TypedArray ids;
  Napi::Float32Array scores;
  Napi::Int32Array counts;
  status = AllocateOutputs(env, call.args.queries, call.args.k, call.bigint, &ids, &scores, &counts);
  if (!status.ok()) return RejectedPromise(env, status);

  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<MergeTopKWorker>(env, std::move(cancel), std::move(call), ids, scores, counts);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace binding
}  // namespace vlk
