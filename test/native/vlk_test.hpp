// Minimal test harness for the C++ core tests (test/native, no dependencies): VLK_TEST registers a
// case, VLK_CHECK / VLK_CHECK_EQ print one line per failed check, run_all() ends the output with
// exactly "N passed, N failed" (cases, not checks) and returns the exit code (1 on any failure).
#pragma once

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define VLK_TEST_POSIX 1
#endif

namespace vlk_test {

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}

struct Registrar {
  Registrar(const char* name, void (*fn)()) { cases().push_back({name, fn}); }
};

struct RunState {
  const char* current = "";
  int failed_checks = 0;
  int passed = 0;
  int failed = 0;
};

inline RunState& state() {
  static RunState s;
  return s;
}

// A sweep can fail thousands of checks for one bug; the first lines carry the information.
constexpr int kMaxLinesPerCase = 12;

inline void report(const char* file, int line, const std::string& what) {
  RunState& s = state();
  ++s.failed_checks;
  if (s.failed_checks <= kMaxLinesPerCase) {
    const char* base = std::strrchr(file, '/');
    std::printf("FAIL %s: %s:%d: %s\n", s.current, base ? base + 1 : file, line, what.c_str());
    std::fflush(stdout);
  }
}

// Collects `<<` context, reports when the statement ends.
class Failure {
 public:
  Failure(const char* file, int line, const char* expr) : file_(file), line_(line) {
    os_ << expr;
  }
  Failure(const Failure&) = delete;
  Failure& operator=(const Failure&) = delete;
  ~Failure() { report(file_, line_, os_.str()); }

  template <class T>
  Failure& operator<<(const T& v) {
    if (!context_started_) {
      os_ << " | ";
      context_started_ = true;
    }
    os_ << v;
    return *this;
  }

 private:
  const char* file_;
  int line_;
  bool context_started_ = false;
  std::ostringstream os_;
};

// Empty when a == b, else "ea == eb (a vs b)".
template <class A, class B>
std::string compare_eq(const char* ea, const char* eb, const A& a, const B& b) {
  if (a == b) return std::string();
  std::ostringstream os;
  os << ea << " == " << eb << " (" << a << " vs " << b << ")";
  return os.str();
}

#if VLK_TEST_POSIX
// A crash in the code under test still ends the output with the summary line (counting the
// crashed case as failed), so the log names the case. Only write(2) here: async-signal-safe.
inline void write_str(const char* s) {
  ssize_t ignored = ::write(1, s, std::strlen(s));
  (void)ignored;
}

inline void write_int(int v) {
  char buf[16];
  int i = sizeof(buf) - 1;
  buf[i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && i > 0);
  write_str(buf + i);
}

inline void on_crash(int sig) {
  const RunState& s = state();
  write_str("FAIL ");
  write_str(s.current);
  write_str(": crashed with signal ");
  write_int(sig);
  write_str("\n");
  write_int(s.passed);
  write_str(" passed, ");
  write_int(s.failed + 1);
  write_str(" failed\n");
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
#endif

/// Runs every registered case whose name contains argv[1] (all without an argument); `-v` also
/// prints passing cases with their time.
inline int run_all(int argc, char** argv) {
  const char* filter = nullptr;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-v") == 0) {
      verbose = true;
    } else {
      filter = argv[i];
    }
  }
#if VLK_TEST_POSIX
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, on_crash);
#endif
  RunState& s = state();
  int& passed = s.passed;
  int& failed = s.failed;
  for (const Case& c : cases()) {
    if (filter != nullptr && std::strstr(c.name, filter) == nullptr) continue;
    s.current = c.name;
    s.failed_checks = 0;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      c.fn();
    } catch (const std::exception& e) {
      report(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    } catch (...) {
      report(__FILE__, __LINE__, "uncaught non-standard exception");
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (s.failed_checks == 0) {
      ++passed;
      if (verbose) std::printf("ok   %s (%.0f ms)\n", c.name, ms);
    } else {
      ++failed;
      if (s.failed_checks > kMaxLinesPerCase) {
        std::printf("FAIL %s: %d more failed checks not shown\n", c.name,
                    s.failed_checks - kMaxLinesPerCase);
      }
    }
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  std::fflush(stdout);
  return failed == 0 ? 0 : 1;
}

}  // namespace vlk_test

#define VLK_TEST_CAT2(a, b) a##b
#define VLK_TEST_CAT(a, b) VLK_TEST_CAT2(a, b)

/// VLK_TEST(name) { body }: a case; the name is what `vlk_core_tests <filter>` matches.
#define VLK_TEST(name)                                                                   \
  static void vlk_test_fn_##name();                                                      \
  static const ::vlk_test::Registrar VLK_TEST_CAT(vlk_test_reg_, name)(#name,            \
                                                                        vlk_test_fn_##name); \
  static void vlk_test_fn_##name()

/// VLK_CHECK(cond) << context...; the switch keeps a following `else` from binding here.
#define VLK_CHECK(cond)  \
  switch (0)             \
  case 0:                \
  default:               \
    if (cond) {          \
    } else               \
      ::vlk_test::Failure(__FILE__, __LINE__, #cond)

#define VLK_CHECK_EQ(a, b)                                                                 \
  switch (0)                                                                               \
  case 0:                                                                                  \
  default:                                                                                 \
    if (const std::string vlk_msg_ = ::vlk_test::compare_eq(#a, #b, (a), (b));             \
        vlk_msg_.empty()) {                                                                \
    } else                                                                                 \
      ::vlk_test::Failure(__FILE__, __LINE__, vlk_msg_.c_str())
