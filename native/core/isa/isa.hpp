// Instruction-set paths (core/isa): what the CPU and OS support (cpuid + xgetbv), the cap set by
// VLK_FORCE_ISA=scalar|avx2|avx512 (read once), and a runtime override for tests (set_isa).
// Kernels are compiled per ISA in separate files and chosen per call from the active ISA.
#pragma once

#include <vector>

#include "common/status.hpp"

namespace vlk {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

/// "scalar", "avx2", "avx512".
const char* isa_name(Isa isa);

/// Parses a name; kInvalidArg naming the accepted values otherwise.
Status parse_isa(const char* name, Isa* out);

/// Best path this CPU and OS support (AVX2 needs AVX2+FMA+OS YMM state; AVX-512 needs F/BW/DQ/VL
/// and OS ZMM state). Cached after the first call.
Isa detected_isa();

/// AVX-512 BF16 and VNNI on top of the avx512 path (the reduced-precision scan kernels).
bool cpu_has_avx512_bf16_vnni();

/// detected_isa() capped by a valid VLK_FORCE_ISA.
Isa isa_cap();

/// Every path usable here (up to isa_cap()), ascending; always starts with scalar.
std::vector<Isa> supported_isas();

/// The ISA operations use now: the runtime override if set, else detected capped by VLK_FORCE_ISA.
/// Errors (reported by every operation): VLK_FORCE_ISA names an unknown path (kInvalidArg) or one
/// this CPU lacks (kUnsupportedIsa).
Status active_isa(Isa* out);

/// Sets (or, with nullptr, clears) the process-wide runtime override. kUnsupportedIsa if above
/// isa_cap(). Thread-safe; affects calls that start afterwards.
Status set_isa(const Isa* isa);

}  // namespace vlk
