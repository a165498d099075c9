// compose entry points (binding). Parses image and text features (B x D, the matrix forms of
// search) and options { mode, alpha, dim, weights }, where weights maps the combiner's PyTorch
// tensor names (CLIP4Cir's combiner.py) to Float32Arrays; sizes P and H come from the biases and
// every tensor's length is checked against them. The output is V8-allocated; the async form keeps
// every input referenced while it runs on the pool.
#include "compose.hpp"

#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/args.hpp"
#include "common/checked_size.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "compose/compose.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

namespace {


// One weight tensor by its PyTorch name, of exactly `n` floats.
Status ReadTensor(Napi::Object w, const char* name, int64_t n, ComposeCall* call, const float** out) {
  Napi::Value v = w.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    return Status(Code::kType, std::string("options.weights['") + name + "']: expected a Float32Array, got " + Describe(v));
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) {
    return Status(Code::kShape, std::string("options.weights['") + name + "']: length " +
                                    std::to_string(a.ElementLength()) + ", expected " + std::to_string(n));
  }
  call->keep.push_back(a);
  *out = a.Data();
  return Status::Ok();
}

Status ReadWeights(Napi::Value value, int64_t d, ComposeCall* call) {
  if (!value.IsObject() || value.IsArray()) {
    return Status(Code::kType, "options.weights: expected an object of Float32Arrays named like the PyTorch combiner "
                               "(text_projection_layer.weight, ...), got " + Describe(value));
  }
  Napi::Object w = value.As<Napi::Object>();
  auto len = [&](const char* name, int64_t* n) -> Status {
    Napi::Value v = w.Get(name);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      return Status(Code::kType, std::string("options.weights['") + name + "']: expected a Float32Array, got " + Describe(v));
    }
    *n = static_cast<int64_t>(v.As<Napi::TypedArray>().ElementLength());
    return Status::Ok();
  };
  int64_t p = 0, h = 0;
  VLK_RETURN_IF_ERROR(len("text_projection_layer.bias", &p));
  VLK_RETURN_IF_ERROR(len("combiner_layer.bias", &h));
  if (p < 1 || h < 1) return Status(Code::kShape, "options.weights: empty projection or combiner bias");
  core::CombinerWeights& cw = call->weights;
  cw.d = d;
  cw.p = p;
  cw.h = h;
  VLK_RETURN_IF_ERROR(ReadTensor(w, "text_projection_layer.weight", SizeMul(p, d), call, &cw.w_tp));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "text_projection_layer.bias", p, call, &cw.b_tp));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "image_projection_layer.weight", SizeMul(p, d), call, &cw.w_ip));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "image_projection_layer.bias", p, call, &cw.b_ip));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "combiner_layer.weight", SizeMul(h, 2, p), call, &cw.w_c));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "combiner_layer.bias", h, call, &cw.b_c));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "dynamic_scalar.0.weight", SizeMul(h, 2, p), call, &cw.w_g1));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "dynamic_scalar.0.bias", h, call, &cw.b_g1));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "dynamic_scalar.3.weight", h, call, &cw.w_g2));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "dynamic_scalar.3.bias", 1, call, &cw.b_g2));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "output_layer.weight", SizeMul(d, h), call, &cw.w_o));
  VLK_RETURN_IF_ERROR(ReadTensor(w, "output_layer.bias", d, call, &cw.b_o));
  return Status::Ok();
}

}  // namespace

Status ParseComposeArgs(Napi::Value image, Napi::Value text, Napi::Value options_value, ComposeCall* call) {
  if (!options_value.IsObject() || options_value.IsArray() || options_value.IsFunction()) {
    return Status(Code::kType, "options: expected an object such as { mode: 'sum' }, got " + Describe(options_value));
  }
  Napi::Object options = options_value.As<Napi::Object>();
  VLK_RETURN_IF_ERROR(ReadMatrix(image, "image", &call->image));
  VLK_RETURN_IF_ERROR(ReadMatrix(text, "text", &call->text));
  int64_t dim = 0;
  const bool has_dim = !options.Get("dim").IsUndefined();
  if (has_dim) VLK_RETURN_IF_ERROR(ReadSize(options.Get("dim"), "options.dim", &dim));
  VLK_RETURN_IF_ERROR(ShapeMatrix("image", has_dim, dim, &call->image));
  VLK_RETURN_IF_ERROR(ShapeMatrix("text", has_dim, dim, &call->text));
  const MatrixView<const float>& im = call->image.view;
  const MatrixView<const float>& tx = call->text.view;
  if (im.cols != tx.cols) {
    return Status(Code::kDimMismatch, "image has dim " + std::to_string(im.cols) + " but text has dim " + std::to_string(tx.cols));
  }
  if (im.rows != tx.rows) {
    return Status(Code::kShape, "image has " + std::to_string(im.rows) + " rows but text has " + std::to_string(tx.rows));
  }
  if (im.stride != im.cols || tx.stride != tx.cols) return Status(Code::kShape, "compose: strided views are not supported");
  core::ComposeArgs& a = call->args;
  a.image = im.data;
  a.text = tx.data;
  a.b = im.rows;
  a.d = im.cols;
  Napi::Value mode = options.Get("mode");
  const bool has_weights = !options.Get("weights").IsUndefined();
  std::string name = has_weights ? "combiner" : "sum";
  if (!mode.IsUndefined()) {
    if (!mode.IsString()) return Status(Code::kType, "options.mode: expected a string, got " + Describe(mode));
    name = mode.As<Napi::String>().Utf8Value();
  }
  VLK_RETURN_IF_ERROR(core::parse_compose_mode(name.c_str(), &a.mode));
  Napi::Value alpha = options.Get("alpha");
  if (!alpha.IsUndefined()) {
    if (!alpha.IsNumber()) return Status(Code::kType, "options.alpha: expected a number, got " + Describe(alpha));
    a.alpha = alpha.As<Napi::Number>().FloatValue();
  }
  if (a.mode == core::ComposeMode::kCombiner) {
    VLK_RETURN_IF_ERROR(ReadWeights(options.Get("weights"), a.d, call));
    a.weights = &call->weights;
  }
  return ReadThreads(options.Get("threads"), &call->threads);
}

namespace {

Status ParseCompose(const Napi::CallbackInfo& info, ComposeCall* call) {
  return ParseComposeArgs(info[0], info[1], info[2], call);
}


class ComposeJob final : public AsyncJob {
 public:
  ComposeJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, ComposeCall call, Isa isa, Napi::Float32Array out)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    Keep(call_.image.array);
    Keep(call_.text.array);
    for (auto& w : call_.keep) Keep(w);
    call_.keep.clear();
    call_.image.array = Napi::Float32Array();
    call_.text.array = Napi::Float32Array();
    call_.args.weights = call_.args.mode == core::ComposeMode::kCombiner ? &call_.weights : nullptr;
    out_slot_ = Keep(out);
    data_ = out.Data();
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    return core::compose(call_.args, data_, MakeContext(call_.threads, isa_, &cancel));
  }
  Napi::Value Result(Napi::Env) override { return Kept(out_slot_); }

 private:
  ComposeCall call_;
  Isa isa_;
  size_t out_slot_ = 0;
  float* data_ = nullptr;
};

}  // namespace

Napi::Value ComposeSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ComposeCall call;
  Status st = ParseCompose(info, &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(call.args.b * call.args.d));
  st = core::compose(call.args, out.Data(), MakeContext(call.threads, isa, nullptr));
  if (!st.ok()) ThrowStatus(env, st);
  return out;
}

Napi::Value ComposeAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  ComposeCall call;
  Status st = ParseCompose(info, &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[3], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(call.args.b * call.args.d));
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<ComposeJob>(env, std::move(cancel), std::move(call), isa, out);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace binding
}  // namespace vlk
