// CUDA device probe (native/cuda/common): what device_info() reports. Runs once; every failure
// becomes a reason string instead of an error, so a CUDA build loads and explains itself on a
// machine without a GPU or driver.
#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "cuda/common/cuda_api.hpp"

namespace vlk {
namespace cuda {

namespace {

std::string version_string(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

DeviceInfo probe() {
  DeviceInfo d;
  d.built = true;
  cudaRuntimeGetVersion(&d.runtime_version);
  int driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
    d.reason = "no CUDA driver (libcuda.so.1 not found or not loadable)";
    return d;
  }
  d.driver_version = driver;
  if (driver < d.runtime_version) {
    d.reason = "CUDA driver too old: " + version_string(driver) + " < " + version_string(d.runtime_version) +
               " (the runtime this build uses)";
    return d;
  }
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    d.reason = std::string("CUDA unavailable: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky-free error state
    return d;
  }
  d.device_count = count;
  if (count == 0) {
    d.reason = "no CUDA device";
    return d;
  }
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
    d.reason = "cannot read the properties of CUDA device 0";
    cudaGetLastError();
    return d;
  }
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.total_memory = static_cast<int64_t>(p.totalGlobalMem);
  if (p.major < 8) {
    d.reason = "CUDA device 0 (" + d.name + ") has compute capability " + std::to_string(p.major) + "." +
               std::to_string(p.minor) + "; the kernels need 8.0 or newer (bf16 tensor cores)";
    return d;
  }
  d.usable = true;
  return d;
}

}  // namespace

const DeviceInfo& device_info() {
  static const DeviceInfo info = probe();
  return info;
}

}  // namespace cuda
}  // namespace vlk
