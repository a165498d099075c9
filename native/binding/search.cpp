// Search entry points (binding). See search.hpp. Parsing repeats lib/search.ts's checks with the
// same codes (lib runs first and gives the friendlier messages); results are V8-allocated typed
// arrays created here on the JS thread, which core (or the pool job) fills in place.
#include "search.hpp"

#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/context.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"
#include "search/search.hpp"

namespace vlk {
namespace binding {

namespace {

// Far above any core count; keeps the int conversion exact.
constexpr double kMaxThreads = 65536;

struct SearchCall {
  MatrixArg queries;
  MatrixArg gallery;
  core::SearchArgs args;
  int threads = 1;
};

std::string Shape(const MatrixView<const float>& m) {
  return std::to_string(m.rows) + " x " + std::to_string(m.cols);
}

// queries, gallery, options -> core arguments. Order of checks (and so the code reported for an
// input with several faults) matches lib/search.ts.
Status ParseSearch(const Napi::CallbackInfo& info, SearchCall* call) {
  Napi::Value options_value = info[2];
  if (!options_value.IsObject() || options_value.IsArray() || options_value.IsFunction()) {
    return Status(Code::kType, "options: expected an object such as { k: 10 }, got " + Describe(options_value));
  }
  Napi::Object options = options_value.As<Napi::Object>();

  VLK_RETURN_IF_ERROR(ReadMatrix(info[0], "queries", &call->queries));
  VLK_RETURN_IF_ERROR(ReadMatrix(info[1], "gallery", &call->gallery));
  bool has_dim = false;
  int64_t dim = 0;
  Napi::Value dim_value = options.Get("dim");
  if (!dim_value.IsUndefined()) {
    VLK_RETURN_IF_ERROR(ReadSize(dim_value, "options.dim", &dim));
    has_dim = true;
  }
  VLK_RETURN_IF_ERROR(ShapeMatrix("queries", has_dim, dim, &call->queries));
  VLK_RETURN_IF_ERROR(ShapeMatrix("gallery", has_dim, dim, &call->gallery));
  const MatrixView<const float>& q = call->queries.view;
  const MatrixView<const float>& g = call->gallery.view;
  if (q.rows == 0 || q.cols == 0) return Status(Code::kEmpty, "queries: shape " + Shape(q) + " is empty");
  if (g.rows == 0 || g.cols == 0) return Status(Code::kEmpty, "gallery: shape " + Shape(g) + " is empty");
  if (q.cols != g.cols) {
    return Status(Code::kDimMismatch, "queries have " + std::to_string(q.cols) + " columns but gallery has " +
                                          std::to_string(g.cols));
  }

  bool clamp = false;
  VLK_RETURN_IF_ERROR(ReadFlag(options.Get("clamp"), "options.clamp", false, &clamp));
  const std::string range = " is not an integer in 1..N (N = " + std::to_string(g.rows) + ")";
  Napi::Value k_value = options.Get("k");
  if (!k_value.IsNumber()) return Status(Code::kInvalidK, "options.k: " + Describe(k_value) + range);
  const double k = k_value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(k) || std::floor(k) != k || k < 1) {
    return Status(Code::kInvalidK, "options.k: " + FormatNumber(k) + range);
  }
  if (k > static_cast<double>(g.rows)) {
    if (!clamp) {
      return Status(Code::kInvalidK, "options.k: " + FormatNumber(k) + range +
                                         "; pass clamp: true to search with k = N");
    }
    call->args.k = g.rows;
  } else {
    call->args.k = static_cast<int64_t>(k);
  }

  call->args.metric = core::Metric::kInnerProduct;
  Napi::Value metric_value = options.Get("metric");
  if (!metric_value.IsUndefined()) {
    const std::string metric = metric_value.IsString() ? metric_value.As<Napi::String>().Utf8Value() : "";
    if (!metric_value.IsString() || !core::parse_metric(metric.c_str(), &call->args.metric).ok()) {
      return Status(Code::kInvalidArg, "options.metric: expected 'ip', 'cosine' or 'l2', got " +
                                           (metric_value.IsString() ? "'" + metric + "'" : Describe(metric_value)));
    }
  }

  call->threads = global_pool().size();
  Napi::Value threads_value = options.Get("threads");
  if (!threads_value.IsUndefined()) {
    const double t = threads_value.IsNumber() ? threads_value.As<Napi::Number>().DoubleValue() : 0;
    if (!threads_value.IsNumber() || !std::isfinite(t) || std::floor(t) != t || t < 1) {
      return Status(Code::kInvalidArg, "options.threads: " +
                                           (threads_value.IsNumber() ? FormatNumber(t) : Describe(threads_value)) +
                                           " is not an integer >= 1");
    }
    call->threads = static_cast<int>(t < kMaxThreads ? t : kMaxThreads);
  }

  call->args.queries = q;
  call->args.gallery = g;
  return core::validate_search(call->args);
}

// Q x k results, V8-allocated (never external) so every embedder accepts them.
Status AllocateOutputs(Napi::Env env, int64_t count, int64_t k, Napi::Int32Array* indices,
                       Napi::Float32Array* scores) {
  int64_t total = 0;
  const std::string what = "result arrays of Q x k = " + std::to_string(count) + " x " + std::to_string(k);
  if (__builtin_mul_overflow(count, k, &total) || total > kMaxSafeInteger / 4) {
    return Status(Code::kOutOfMemory, what + " entries are too large");
  }
  try {
    *indices = Napi::Int32Array::New(env, static_cast<size_t>(total));
    *scores = Napi::Float32Array::New(env, static_cast<size_t>(total));
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, "cannot allocate " + what + " entries");
  }
  return Status::Ok();
}

Napi::Object MakeResult(Napi::Env env, Napi::Value indices, Napi::Value scores, int64_t k, int64_t count) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("indices", indices);
  result.Set("scores", scores);
  result.Set("k", Napi::Number::New(env, static_cast<double>(k)));
  result.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  return result;
}

Context MakeContext(int threads, Isa isa, const CancelFlag* cancel) {
  Context ctx;
  ctx.pool = &global_pool();
  ctx.threads = threads;
  ctx.isa = isa;
  ctx.cancel = cancel;
  return ctx;
}

// core::search for one async call; owns nothing but views, the kept objects pin the memory.
class SearchWorker final : public AsyncJob {
 public:
  SearchWorker(Napi::Env env, std::shared_ptr<CancelFlag> cancel, const SearchCall& call, Isa isa,
               Napi::Int32Array indices, Napi::Float32Array scores)
      : AsyncJob(env, std::move(cancel)), args_(call.args), threads_(call.threads), isa_(isa) {
    Keep(call.queries.array);
    Keep(call.gallery.array);
    indices_slot_ = Keep(indices);
    scores_slot_ = Keep(scores);
    out_.indices = indices.Data();
    out_.scores = scores.Data();
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    return core::search(args_, out_, MakeContext(threads_, isa_, &cancel));
  }

  Napi::Value Result(Napi::Env env) override {
    return MakeResult(env, Kept(indices_slot_), Kept(scores_slot_), args_.k, args_.queries.rows);
  }

 private:
  core::SearchArgs args_;
  core::SearchOut out_;
  int threads_;
  Isa isa_;
  size_t indices_slot_ = 0;
  size_t scores_slot_ = 0;
};

}  // namespace

Napi::Value SearchSync(const Napi::CallbackInfo& info, AddonState&) {
  Napi::Env env = info.Env();
  SearchCall call;
  Status status = ParseSearch(info, &call);
  if (!status.ok()) ThrowStatus(env, status);
  Isa isa = Isa::kScalar;
  status = active_isa(&isa);
  if (!status.ok()) ThrowStatus(env, status);
  Napi::Int32Array indices;
  Napi::Float32Array scores;
  status = AllocateOutputs(env, call.args.queries.rows, call.args.k, &indices, &scores);
  if (!status.ok()) ThrowStatus(env, status);

  core::SearchOut out;
  out.indices = indices.Data();
  out.scores = scores.Data();
  try {
    status = core::search(call.args, out, MakeContext(call.threads, isa, nullptr));
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "out of memory");
  } catch (...) {
    status = Status(Code::kInternal, "unexpected native exception");
  }
  if (!status.ok()) ThrowStatus(env, status);
  return MakeResult(env, indices, scores, call.args.k, call.args.queries.rows);
}

Napi::Value SearchAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  SearchCall call;
  Status status = ParseSearch(info, &call);
  if (!status.ok()) return RejectedPromise(env, status);

  std::shared_ptr<CancelFlag> cancel;
  Napi::Value token = info[3];
  if (!token.IsUndefined() && !token.IsNull()) {
    bool ok = token.IsObject() && token.As<Napi::Object>().InstanceOf(state.cancel_token.Value());
    if (ok) {
      try {
        cancel = CancelToken::Unwrap(token.As<Napi::Object>())->flag();
      } catch (const Napi::Error&) {
        ok = false;
      }
    }
    if (!ok) {
      return RejectedPromise(env, Status(Code::kInvalidArg, "token: expected a value from createCancelToken(), got " +
                                                                Describe(token)));
    }
  }

  Isa isa = Isa::kScalar;
  status = active_isa(&isa);
  if (!status.ok()) return RejectedPromise(env, status);
  Napi::Int32Array indices;
  Napi::Float32Array scores;
  status = AllocateOutputs(env, call.args.queries.rows, call.args.k, &indices, &scores);
  if (!status.ok()) return RejectedPromise(env, status);

  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<SearchWorker>(env, std::move(cancel), call, isa, indices, scores);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace binding
}  // namespace vlk
