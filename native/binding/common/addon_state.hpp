// Per-instance data of the addon (binding/common): one per Node environment (main thread or
// worker), owned by the Napi::Addon instance. Nothing here is process-global; the thread pool is
// (vlk::global_pool(), shared by every instance).
#pragma once

#include <napi.h>

#include <memory>

#include "async_job.hpp"

namespace vlk {
namespace binding {

struct AddonState {
  std::shared_ptr<JobRunner> runner;        // the instance's thread-safe function and job accounting
  Napi::FunctionReference cancel_token;     // CancelToken constructor, for InstanceOf checks
  Napi::FunctionReference flat_index;       // FlatIndexWrap constructor, for createFlatIndex
};

}  // namespace binding
}  // namespace vlk
