// Re-ranking entry points (binding). See rerank.hpp. Parsing repeats lib/rerank.ts's checks with the
// same codes and adds the per-entry ones (offsets non-decreasing, rows in 0..N-1) while copying the
// candidates into int64 offsets + int32 rows (the dense form drops its -1 entries). Results are
// V8-allocated typed arrays created here on the JS thread, which core (or the pool job) fills.
#include "rerank.hpp"

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
#include "isa/isa.hpp"
#include "search/rerank.hpp"
#include "search/search.hpp"

namespace vlk {
namespace binding {

namespace {

// counts are an Int32Array, so k (their largest value) must fit one.
constexpr double kMaxK = 2147483647.0;

const char* const kCandidatesExpected =
    "candidates: expected an Int32Array (Q x m rows, -1: none) or { offsets, rows }, got ";

// The candidate lists in core's CSR form. Small (O(Q) + O(candidates)) copies, owned by the call and
// then by its job, so the JS arrays may change after the call returns.
struct CandidateData {
  std::vector<int64_t> offsets;  // Q + 1
  std::vector<int32_t> rows;
};

struct RerankCall {
  MatrixArg queries;
  MatrixArg gallery;
  core::RerankArgs args;  // offsets and rows point into `candidates`
  int threads = 1;
  std::shared_ptr<CandidateData> candidates;
};

// Dense candidates: Q x m rows, -1 entries skipped.
Status ReadDense(Napi::Value value, int64_t q, int64_t n, CandidateData* c) {
  const int32_t* rows = nullptr;
  size_t length = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(value, "candidates", &rows, &length));
  const int64_t total = static_cast<int64_t>(length);
  if (total % q != 0) {
    return Status(Code::kShape, "candidates: length " + std::to_string(total) +
                                    " is not a multiple of the number of queries (" + std::to_string(q) +
                                    "); use { offsets, rows } for lists of different lengths");
  }
  const int64_t m = total / q;
  c->offsets.assign(static_cast<size_t>(q) + 1, 0);
  c->rows.reserve(length);
  for (int64_t i = 0; i < q; ++i) {
    for (int64_t j = i * m; j < (i + 1) * m; ++j) {
      const int32_t r = rows[j];
      if (r == -1) continue;
      if (r < 0 || r >= n) {
        return Status(Code::kInvalidArg, "candidates[" + std::to_string(j) + "]: row " + std::to_string(r) +
                                             " (query " + std::to_string(i) + ") is outside 0.." +
                                             std::to_string(n - 1) + " (-1: no candidate)");
      }
      c->rows.push_back(r);
    }
    c->offsets[static_cast<size_t>(i) + 1] = static_cast<int64_t>(c->rows.size());
  }
  return Status::Ok();
}

// CSR candidates: query i's are rows[offsets[i] .. offsets[i + 1]).
Status ReadLists(Napi::Object o, int64_t q, int64_t n, CandidateData* c) {
  const int32_t* off = nullptr;
  const int32_t* rows = nullptr;
  size_t n_off = 0, n_rows = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(o.Get("offsets"), "candidates.offsets", &off, &n_off));
  VLK_RETURN_IF_ERROR(ReadInt32s(o.Get("rows"), "candidates.rows", &rows, &n_rows));
  if (static_cast<int64_t>(n_off) != q + 1) {
    return Status(Code::kShape, "candidates.offsets: length " + std::to_string(n_off) + " is not queries + 1 (" +
                                    std::to_string(q + 1) + ")");
  }
  if (off[0] != 0 || off[q] != static_cast<int64_t>(n_rows)) {
    return Status(Code::kShape, "candidates.offsets: must start at 0 and end at rows.length (" +
                                    std::to_string(n_rows) + "), got " + std::to_string(off[0]) + " .. " +
                                    std::to_string(off[q]));
  }
  // Non-decreasing from 0 to rows.length: every slice below lies inside rows.
  for (int64_t i = 0; i < q; ++i) {
    if (off[i + 1] < off[i]) {
      return Status(Code::kInvalidArg, "candidates.offsets: decrease at query " + std::to_string(i) + " (" +
                                           std::to_string(off[i]) + " then " + std::to_string(off[i + 1]) + ")");
    }
  }
  for (int64_t i = 0; i < q; ++i) {
    for (int64_t j = off[i]; j < off[i + 1]; ++j) {
      if (rows[j] < 0 || rows[j] >= n) {
        return Status(Code::kInvalidArg, "candidates.rows[" + std::to_string(j) + "]: row " +
                                             std::to_string(rows[j]) + " (query " + std::to_string(i) +
                                             ") is outside 0.." + std::to_string(n - 1));
      }
    }
  }
  c->offsets.assign(off, off + n_off);
  c->rows.assign(rows, rows + n_rows);
  return Status::Ok();
}

// candidates: Int32Array (Q x m, -1: none) or { offsets, rows } for q queries over n gallery rows.
Status ReadCandidates(Napi::Value value, int64_t q, int64_t n, CandidateData* c) {
  if (value.IsTypedArray()) {
    if (value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      return Status(Code::kType, kCandidatesExpected + Describe(value));
    }
    return ReadDense(value, q, n, c);
  }
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    return Status(Code::kType, kCandidatesExpected + Describe(value));
  }
  return ReadLists(value.As<Napi::Object>(), q, n, c);
}

// queries, gallery, candidates, options -> core arguments. Order of checks (and so the code
// reported for an input with several faults) matches lib/rerank.ts.
Status ParseRerank(const Napi::CallbackInfo& info, RerankCall* call) {
  Napi::Value options_value = info[3];
  if (!options_value.IsObject() || options_value.IsArray() || options_value.IsFunction()) {
    return Status(Code::kType, "options: expected an object such as { k: 10 }, got " + Describe(options_value));
  }
  Napi::Object options = options_value.As<Napi::Object>();

  VLK_RETURN_IF_ERROR(ReadQueriesAndGallery(info[0], info[1], options, &call->queries, &call->gallery));
  const MatrixView<const float>& q = call->queries.view;
  const MatrixView<const float>& g = call->gallery.view;

  try {
    call->candidates = std::make_shared<CandidateData>();
    VLK_RETURN_IF_ERROR(ReadCandidates(info[2], q.rows, g.rows, call->candidates.get()));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "out of memory copying the candidates");
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

  VLK_RETURN_IF_ERROR(ReadThreads(options.Get("threads"), &call->threads));

  call->args.queries = q;
  call->args.gallery = g;
  call->args.offsets = call->candidates->offsets.data();
  call->args.rows = call->candidates->rows.empty() ? nullptr : call->candidates->rows.data();
  return Status::Ok();
}

Status RunRerank(const core::RerankArgs& args, const core::RerankOut& out, int threads, Isa isa,
                 const CancelFlag* cancel) {
  Context ctx;
  ctx.pool = &global_pool();
  ctx.threads = threads;
  ctx.isa = isa;
  ctx.cancel = cancel;
  return core::rerank(args, out, ctx);
}

}  // namespace

// The core call both paths run; it owns its copy of the arguments and shares the candidates.
static auto RerankRunFor(const RerankCall& call) {
  return [args = call.args, candidates = call.candidates, threads = call.threads](
             Isa isa, const CancelFlag* cancel, const TopKBuffers& b) {
    core::RerankOut out;
    out.indices = b.indices;
    out.scores = b.scores;
    out.counts = b.counts;
    return RunRerank(args, out, threads, isa, cancel);
  };
}

Napi::Value RerankSync(const Napi::CallbackInfo& info, AddonState&) {
  Napi::Env env = info.Env();
  RerankCall call;
  Status status = ParseRerank(info, &call);
  if (!status.ok()) ThrowStatus(env, status);
  return TopKSync(env, call.args.queries.rows, call.args.k, RerankRunFor(call));
}

Napi::Value RerankAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  RerankCall call;
  Status status = ParseRerank(info, &call);
  if (!status.ok()) return RejectedPromise(env, status);
  return TopKAsync(env, state, info[4], call.args.queries.rows, call.args.k,
                   {call.queries.array, call.gallery.array}, RerankRunFor(call));
}

}  // namespace binding
}  // namespace vlk
