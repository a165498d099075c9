// The CUDA backend's interface (cuda_api.hpp) for builds without CUDA (binding.gyp, and CMake
// without VLK_CUDA): nothing is compiled in, device_info() says so and every call is kNoDevice.
// A CUDA build compiles vlk_cuda_sources instead of this file, never both.
#include "cuda/common/cuda_api.hpp"

#include <memory>
#include <string>
#include <utility>

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

// Never made here (upload_gallery fails), but defined so the interface links.
struct DeviceGallery::Impl {};

DeviceGallery::DeviceGallery(int64_t rows, int64_t dim, core::Metric metric, int64_t device_bytes,
                             std::unique_ptr<Impl> impl)
    : rows_(rows), dim_(dim), metric_(metric), device_bytes_(device_bytes), impl_(std::move(impl)) {}

DeviceGallery::~DeviceGallery() = default;

Status upload_gallery(const MatrixView<const float>&, core::Metric, std::shared_ptr<DeviceGallery>* out) {
  if (out != nullptr) out->reset();
  return Status(Code::kNoDevice, std::string("CUDA is not available: ") + kNotBuilt);
}

Status search_resident(const DeviceGallery&, const core::SearchArgs&, const core::SearchOut&, const Context&,
                       Precision) {
  return Status(Code::kNoDevice, std::string("CUDA is not available: ") + kNotBuilt);
}

Status search(const core::SearchArgs&, const core::SearchOut&, const Context&, Precision) {
  return Status(Code::kNoDevice, std::string("CUDA is not available: ") + kNotBuilt);
}

}  // namespace cuda
}  // namespace vlk
