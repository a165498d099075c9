// The CUDA backend's interface (native/cuda), in plain C++ (no CUDA types), so the binding includes
// it whether or not CUDA is compiled in. Implemented by the .cu files of vlk_cuda_sources in a CUDA
// build (VLK_CUDA=ON), and by cuda_stub.cpp otherwise (built = false, every call kNoDevice).
// Operations mirror native/core: cuda::search has core::search's arguments and contract.
#pragma once

#include <cstdint>
#include <string>

#include "common/context.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace cuda {

struct DeviceInfo {
  bool built = false;          // this binary has the CUDA backend
  bool usable = false;         // a device can run it now
  std::string reason;          // why not usable (empty when usable): "built without CUDA", "no CUDA
                               // driver (libcuda.so.1 not found)", "no CUDA device", "CUDA driver too
                               // old: 12.2 < 13.0 required", or the runtime's own message
  std::string name;            // device 0's name, e.g. "NVIDIA H100 80GB HBM3"
  int device_count = 0;
  int cc_major = 0, cc_minor = 0;  // compute capability of device 0
  int driver_version = 0;      // e.g. 13000 for 13.0 (0: no driver)
  int runtime_version = 0;     // the runtime this binary was built with
  int64_t total_memory = 0;    // bytes on device 0
};

/// What this process can use (probed once, thread-safe).
const DeviceInfo& device_info();

/// How the GPU scans the gallery.
///  kExact: bf16 tensor-core scan, a proven per-row error bound, then fp32 re-score of every row
///          that can still reach the top k: results equal core::search (ids and scores).
///  kBf16:  bf16 tensor-core scores only (approximate, like torch.topk on a bf16 matmul).
enum class Precision { kExact = 0, kBf16 = 1 };

/// core::search on device 0: same arguments, validation, errors and (kExact) results. The gallery
/// and queries are copied to the device per call. Errors beyond core's: kNoDevice (CUDA unusable:
/// the message gives device_info().reason), kOutOfMemory (device memory; the message names the
/// bytes), kInvalidArg (k above the largest this backend selects, named in the message).
Status search(const core::SearchArgs& args, const core::SearchOut& out, const Context& ctx, Precision precision);

}  // namespace cuda
}  // namespace vlk
