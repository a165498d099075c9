// The CUDA backend's interface (native/cuda), in plain C++ (no CUDA types), so the binding includes
// it whether or not CUDA is compiled in. Implemented by the .cu files of vlk_cuda_sources in a CUDA
// build (VLK_CUDA=ON), and by cuda_stub.cpp otherwise (built = false, every call kNoDevice).
// Operations mirror native/core: cuda::search has core::search's arguments and contract; a
// DeviceGallery keeps a gallery resident on the device for repeated searches (search_resident).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/context.hpp"
#include "common/matrix.hpp"
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

/// The largest k, and the most gallery rows, the GPU path takes (beyond: kInvalidArg).
constexpr int64_t kMaxK = 1024;
constexpr int64_t kMaxRows = 2097152;

/// A gallery resident on device 0 (made by upload_gallery): its fp32 rows, their bf16 codes and
/// the per-row norms the scan's error bound needs, for one metric. Immutable once made, so any
/// number of threads may search it at once; the device memory is freed with the last reference.
class DeviceGallery {
 public:
  struct Impl;  // the device buffers (search.cu; empty in the stub)
  DeviceGallery(int64_t rows, int64_t dim, core::Metric metric, int64_t device_bytes, std::unique_ptr<Impl> impl);
  ~DeviceGallery();
  DeviceGallery(const DeviceGallery&) = delete;
  DeviceGallery& operator=(const DeviceGallery&) = delete;

  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  core::Metric metric() const { return metric_; }
  /// Device bytes held.
  int64_t device_bytes() const { return device_bytes_; }
  const Impl& impl() const { return *impl_; }

 private:
  int64_t rows_;
  int64_t dim_;
  core::Metric metric_;
  int64_t device_bytes_;
  std::unique_ptr<Impl> impl_;
};

/// Copies `gallery` (rows x dim, any stride) to device 0 once and prepares it for `metric`
/// (codes and norms are built on the device). Errors: kEmpty (no rows or no columns), kNonFinite
/// (NaN/Inf, naming row and column), kInvalidArg (more than kMaxRows rows), kNoDevice (CUDA
/// unusable: the message gives device_info().reason), kOutOfMemory (device memory), kInternal.
Status upload_gallery(const MatrixView<const float>& gallery, core::Metric metric,
                      std::shared_ptr<DeviceGallery>* out);

/// core::search against a resident gallery: `args` as for search(), but args.gallery only gives
/// the row count and dim (which must be the gallery's, as must args.metric: kInvalidArg) and,
/// when its data is non-null, the same rows on the host, read only to finish the rare query whose
/// candidates overflow the GPU's list on the CPU (with null data those rows are copied back from
/// the device). Filters (allow bits over the rows, per-query exclude rows) are applied inside the
/// scan, as on the CPU. tokens must be 1. Same results and errors as search().
Status search_resident(const DeviceGallery& gallery, const core::SearchArgs& args, const core::SearchOut& out,
                       const Context& ctx, Precision precision);

/// core::search on device 0: same arguments, validation, errors and (kExact) results, filters
/// included. The gallery and queries are copied to the device per call (upload_gallery, then
/// search_resident). Errors beyond core's: kNoDevice (CUDA unusable: the message gives
/// device_info().reason), kOutOfMemory (device memory; the message names the bytes), kInvalidArg
/// (k above kMaxK, N above kMaxRows, tokens other than 1, named in the message).
Status search(const core::SearchArgs& args, const core::SearchOut& out, const Context& ctx, Precision precision);

}  // namespace cuda
}  // namespace vlk
