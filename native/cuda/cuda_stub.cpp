// The CUDA backend's interface (cuda_api.hpp) for builds without CUDA (binding.gyp, and CMake
// without VLK_CUDA): nothing is compiled in, device_info() says so and every call is kNoDevice.
// A CUDA build compiles vlk_cuda_sources instead of this file, never both.
#include "cuda/common/cuda_api.hpp"

namespace vlk {
namespace cuda {

namespace {

constexpr const char* kNotBuilt = "built without CUDA (install the CUDA build of vlkernels: see README)";

}  // namespace

const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    d.built = false;
    d.usable = false;
    d.reason = kNotBuilt;
    return d;
  }();
  return info;
}

Status search(const core::SearchArgs&, const core::SearchOut&, const Context&, Precision) {
  return Status(Code::kNoDevice, std::string("CUDA is not available: ") + kNotBuilt);
}

}  // namespace cuda
}  // namespace vlk
