// CPU feature detection and ISA selection (core/isa). Uses cpuid and xgetbv through GCC/Clang
// builtins; compiled with baseline flags only. Non-x86 builds report scalar; on arm64 that path's
// search table is the NEON one (NEON is baseline there, so no runtime check; see search.cpp).
#include <atomic>
#include <cstdlib>
#include <string>

#include "isa/isa.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define VLK_X86 1
#endif

namespace vlk {

namespace {

#if VLK_X86
unsigned long long read_xcr0() {
  unsigned int eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

Isa detect() {
#if VLK_X86
  unsigned int a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kScalar;
  const bool osxsave = (c >> 27) & 1;
  const bool fma = (c >> 12) & 1;
  const bool avx = (c >> 28) & 1;
  if (!osxsave || !avx) return Isa::kScalar;
  const unsigned long long xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = (xcr0 & 0xE6) == 0xE6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::kScalar;
  const bool avx2 = (b >> 5) & 1;
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
  const bool avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  if (!(ymm_state && avx2 && fma)) return Isa::kScalar;
  if (zmm_state && avx512f && avx512dq && avx512bw && avx512vl) return Isa::kAvx512;
  return Isa::kAvx2;
#else
  return Isa::kScalar;
#endif
}

bool detect_bf16_vnni() {
#if VLK_X86
  if (detect() != Isa::kAvx512) return false;
  unsigned int a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool vnni = (c >> 11) & 1;
  const unsigned int max_sub = a;
  if (max_sub < 1 || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  const bool bf16 = (a >> 5) & 1;
  return vnni && bf16;
#else
  return false;
#endif
}

// -1: no override; else the Isa value.
std::atomic<int> g_override{-1};

struct ForcedIsa {
  bool set = false;
  Status status;
  Isa isa = Isa::kScalar;
};

const ForcedIsa& forced() {
  static const ForcedIsa f = [] {
    ForcedIsa r;
    const char* env = std::getenv("VLK_FORCE_ISA");
    if (env == nullptr || *env == '\0') return r;
    r.set = true;
    Isa isa;
    Status s = parse_isa(env, &isa);
    if (!s.ok()) {
      r.status = Status(s.code, "VLK_FORCE_ISA: " + s.message);
      return r;
    }
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
      r.status = Status(Code::kUnsupportedIsa,
                        std::string("VLK_FORCE_ISA=") + env + " but this CPU supports at most " +
                            isa_name(detected_isa()));
      return r;
    }
    r.isa = isa;
    return r;
  }();
  return f;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "scalar";
}

Status parse_isa(const char* name, Isa* out) {
  const std::string s = name ? name : "";
  if (s == "scalar") { *out = Isa::kScalar; return Status::Ok(); }
  if (s == "avx2") { *out = Isa::kAvx2; return Status::Ok(); }
  if (s == "avx512") { *out = Isa::kAvx512; return Status::Ok(); }
  return Status(Code::kInvalidArg, "isa: unknown path '" + s + "' (expected scalar, avx2 or avx512)");
}

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

// Highest path allowed: detected, capped by a valid VLK_FORCE_ISA.
Isa isa_cap() {
  const ForcedIsa& f = forced();
  return (f.set && f.status.ok()) ? f.isa : detected_isa();
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (int i = 0; i <= static_cast<int>(isa_cap()); ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

Status active_isa(Isa* out) {
  const int o = g_override.load(std::memory_order_relaxed);
  if (o >= 0) {
    *out = static_cast<Isa>(o);
    return Status::Ok();
  }
  const ForcedIsa& f = forced();
  if (!f.status.ok()) return f.status;
  *out = f.set ? f.isa : detected_isa();
  return Status::Ok();
}

Status set_isa(const Isa* isa) {
  if (isa == nullptr) {
    g_override.store(-1, std::memory_order_relaxed);
    return Status::Ok();
  }
  if (static_cast<int>(*isa) > static_cast<int>(isa_cap())) {
    return Status(Code::kUnsupportedIsa, std::string("isa: '") + isa_name(*isa) +
                                             "' is above what this process allows (best: " +
                                             isa_name(isa_cap()) + ", detected " +
                                             isa_name(detected_isa()) + ")");
  }
  g_override.store(static_cast<int>(*isa), std::memory_order_relaxed);
  return Status::Ok();
}

bool cpu_has_avx512_bf16_vnni() {
  static const bool has = detect_bf16_vnni();
  return has;
}

}  // namespace vlk
