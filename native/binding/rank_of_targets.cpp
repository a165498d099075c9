// Rank-of-targets entry points (binding). Specs (every array's length is checked against the sizes):
//   rankOfTargets: { q, n, d, queries (q * d), gallery (n * d): Float32Array, metric, ties: string,
//     gtOffsets: Int32Array (q + 1), gtIds: Int32Array (gtOffsets[q]), exOffsets?: Int32Array
//     (q + 1) with exIds: Int32Array, threads? } -> { ranks: Int32Array (gtOffsets[q]),
//     best: Int32Array (q), ties: number }
//   crossModalRanks: { n, d, per, images (n * d), captions (n * per * d): Float32Array, metric,
//     ties, threads? } -> { i2t: Int32Array (n), t2i: Int32Array (n * per), tiesI2t, tiesT2i }
// Flat-spec calls (common/spec_call.hpp); CSR offsets are widened to int64 for the core.
#include "rank_of_targets.hpp"

#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/spec_call.hpp"
#include "metrics/rank_of_targets.hpp"

namespace vlk {
namespace binding {

namespace {

// A CSR pair: offsets (rows + 1) widened to int64, ids read in place; offsets[rows] must be the
// ids' length (the core checks order and range).
Status ReadCsr(Napi::Object spec, const char* off_name, const char* ids_name, int64_t rows, SpecCall* call,
               std::vector<int64_t>* off, const int32_t** ids) {
  const int32_t* raw = nullptr;
  VLK_RETURN_IF_ERROR(SpecI32(spec, off_name, rows + 1, false, call, &raw));
  size_t len = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(spec.Get(ids_name), ids_name, ids, &len));
  call->keep.push_back(spec.Get(ids_name).As<Napi::Object>());
  try {
    off->assign(raw, raw + rows + 1);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, std::string(off_name) + ": out of memory");
  }
  if ((*off)[size_t(rows)] != static_cast<int64_t>(len)) {
    return Status(Code::kShape, std::string(ids_name) + ": length " + std::to_string(len) + ", expected " + off_name +
                                    "[" + std::to_string(rows) + "] = " + std::to_string((*off)[size_t(rows)]));
  }
  return Status::Ok();
}

Status ReadRule(Napi::Object spec, core::Metric* metric, core::TieRule* ties) {
  std::string name;
  VLK_RETURN_IF_ERROR(SpecString(spec, "metric", &name));
  VLK_RETURN_IF_ERROR(core::parse_metric(name.c_str(), metric));
  VLK_RETURN_IF_ERROR(SpecString(spec, "ties", &name));
  return core::parse_tie_rule(name.c_str(), ties);
}

Status ParseRankOfTargets(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::RankArgs args;
    core::RankOut out;
    std::vector<int64_t> gt_off, ex_off;
  };
  auto s = std::make_shared<State>();
  core::RankArgs& a = s->args;
  int64_t q = 0, n = 0, d = 0;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "q", &q));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &d));
  const float* queries = nullptr;
  const float* gallery = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "queries", SpecProduct(q, d), false, call, &queries));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "gallery", SpecProduct(n, d), false, call, &gallery));
  a.queries = MatrixView<const float>(queries, q, d);
  a.gallery = MatrixView<const float>(gallery, n, d);
  VLK_RETURN_IF_ERROR(ReadRule(spec, &a.metric, &a.ties));
  VLK_RETURN_IF_ERROR(ReadCsr(spec, "gtOffsets", "gtIds", q, call, &s->gt_off, &a.gt_ids));
  a.gt_offsets = s->gt_off.data();
  if (!spec.Get("exOffsets").IsUndefined()) {
    VLK_RETURN_IF_ERROR(ReadCsr(spec, "exOffsets", "exIds", q, call, &s->ex_off, &a.exclude_ids));
    a.exclude_offsets = s->ex_off.data();
  }
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "ranks", s->gt_off[size_t(q)], call, &s->out.ranks));
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "best", q, call, &s->out.best));
  call->run = [s](const Context& ctx) { return core::rank_of_targets(s->args, s->out, ctx); };
  call->tail.emplace_back("ties", [s](Napi::Env env) { return Napi::Number::New(env, double(s->out.ties)); });
  return Status::Ok();
}

Status ParseCrossModalRanks(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::CrossModalArgs args;
    core::CrossModalOut out;
  };
  auto s = std::make_shared<State>();
  core::CrossModalArgs& a = s->args;
  int64_t n = 0, d = 0, per = 0;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &d));
  VLK_RETURN_IF_ERROR(SpecInteger(spec, "per", 1, &per));
  if (n > 0 && per > (int64_t{1} << 31) / n) {
    return Status(Code::kShape, "captions: images x perImage = " + std::to_string(n) + " x " + std::to_string(per) +
                                    " exceeds the int32 ranks");
  }
  const float* images = nullptr;
  const float* captions = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "images", SpecProduct(n, d), false, call, &images));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "captions", SpecProduct(n, per, d), false, call, &captions));
  a.images = MatrixView<const float>(images, n, d);
  a.captions = MatrixView<const float>(captions, SizeMul(n, per), d);
  a.per = per;
  VLK_RETURN_IF_ERROR(ReadRule(spec, &a.metric, &a.ties));
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "i2t", n, call, &s->out.i2t));
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "t2i", SpecProduct(n, per), call, &s->out.t2i));
  call->run = [s](const Context& ctx) { return core::cross_modal_ranks(s->args, s->out, ctx); };
  call->tail.emplace_back("tiesI2t", [s](Napi::Env env) { return Napi::Number::New(env, double(s->out.ties_i2t)); });
  call->tail.emplace_back("tiesT2i", [s](Napi::Env env) { return Napi::Number::New(env, double(s->out.ties_t2i)); });
  return Status::Ok();
}

}  // namespace

Napi::Value RankOfTargetsSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseRankOfTargets, "rankOfTargets");
}
Napi::Value RankOfTargetsAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseRankOfTargets, "rankOfTargets");
}
Napi::Value CrossModalRanksSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseCrossModalRanks, "crossModalRanks");
}
Napi::Value CrossModalRanksAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseCrossModalRanks, "crossModalRanks");
}

}  // namespace binding
}  // namespace vlk
