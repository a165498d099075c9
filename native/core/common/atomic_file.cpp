// File helpers and atomic writes (core/common). See atomic_file.hpp.
#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>

namespace vlk {

namespace {

// strerror_r comes in a GNU flavour (returns char*) and an XSI one (returns int).
inline const char* strerror_result(int rc, const char* buf) { return rc == 0 ? buf : "unknown error"; }
inline const char* strerror_result(const char* r, const char*) { return r; }

// A hex suffix that differs between calls, threads and processes.
std::string random_suffix() {
  static std::atomic<uint64_t> counter{0};
  uint64_t x = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               (counter.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B97F4A7C15ull);
  try {
    std::random_device rd;
    x ^= (uint64_t(rd()) << 32) | rd();
  } catch (...) {
    // No entropy source: time and counter still make the name unique enough for O_EXCL retries.
  }
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

// "a/b/c" -> dir "a/b", dir_prefix "a/b/", base "c"; "c" -> ".", "", "c".
void split_path(const std::string& path, std::string* dir, std::string* dir_prefix, std::string* base) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    *dir = ".";
    *dir_prefix = "";
    *base = path;
  } else {
    *dir = slash == 0 ? "/" : path.substr(0, slash);
    *dir_prefix = path.substr(0, slash + 1);
    *base = path.substr(slash + 1);
  }
}

}  // namespace

std::string errno_string(int e) {
  char buf[256];
  buf[0] = '\0';
  return strerror_result(strerror_r(e, buf, sizeof(buf)), buf);
}

Status io_error(const std::string& what, int err) { return Status(Code::kIo, what + ": " + errno_string(err)); }

int Fd::reset() {
  int rc = 0;
  if (fd >= 0) rc = ::close(fd);
  fd = -1;
  return rc;
}

bool pread_full(int fd, uint8_t* p, int64_t n, int64_t at, int64_t* got) {
  int64_t done = 0;
  while (done < n) {
    const size_t want = size_t(std::min<int64_t>(n - done, int64_t(1) << 30));
    const ssize_t r = ::pread(fd, p + done, want, off_t(at + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      *got = done;
      return false;
    }
    if (r == 0) break;
    done += r;
  }
  *got = done;
  return true;
}

bool pwrite_full(int fd, const uint8_t* p, int64_t n, int64_t at) {
  int64_t done = 0;
  while (done < n) {
    const size_t want = size_t(std::min<int64_t>(n - done, int64_t(1) << 30));
    const ssize_t r = ::pwrite(fd, p + done, want, off_t(at + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) {
      errno = EIO;
      return false;
    }
    done += r;
  }
  return true;
}

Status AtomicFile::create(const std::string& path, const std::string& verb) {
  discard();
  path_ = path;
  verb_ = verb;
  // A hidden name next to the target, the target's name cut so that the whole stays under NAME_MAX.
  std::string dir_prefix, base;
  split_path(path, &dir_, &dir_prefix, &base);
  const std::string prefix = dir_prefix + "." + base.substr(0, 160) + ".tmp-" + std::to_string(::getpid()) + "-";
  for (int attempt = 0; attempt < 16 && fd_.fd < 0; ++attempt) {
    tmp_ = prefix + random_suffix();
    fd_.fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_.fd < 0 && errno != EEXIST) break;
  }
  if (fd_.fd < 0) return io_error(verb_ + ": cannot create temporary file '" + tmp_ + "' for '" + path_ + "'", errno);
  live_ = true;
  return Status::Ok();
}

Status AtomicFile::fail(Status s) {
  const int saved = errno;
  discard();
  errno = saved;
  return s;
}

void AtomicFile::discard() {
  fd_.reset();
  if (live_) ::unlink(tmp_.c_str());
  live_ = false;
}

Status AtomicFile::write_at(int64_t pos, const uint8_t* p, int64_t n) {
  if (!live_ || fd_.fd < 0) return Status(Code::kInternal, verb_ + ": no temporary file is open");
  if (!pwrite_full(fd_.fd, p, n, pos)) return fail(io_error(verb_ + ": cannot write '" + tmp_ + "'", errno));
  return Status::Ok();
}

Status AtomicFile::commit(const CancelFlag* cancel) {
  if (!live_ || fd_.fd < 0) return Status(Code::kInternal, verb_ + ": no temporary file is open");
  if (::fsync(fd_.fd) != 0) return fail(io_error(verb_ + ": cannot sync '" + tmp_ + "'", errno));
  if (fd_.reset() != 0) return fail(io_error(verb_ + ": cannot close '" + tmp_ + "'", errno));
  if (cancel != nullptr && cancel->cancelled()) return fail(Status(Code::kAborted, verb_ + " cancelled"));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    return fail(io_error(verb_ + ": cannot rename '" + tmp_ + "' to '" + path_ + "'", errno));
  }
  live_ = false;  // the temporary name is gone: it is the target now

  // Make the rename itself durable. Some file systems cannot fsync a directory (EINVAL): ignored.
  Fd dfd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.fd < 0) {
    return io_error(verb_ + ": wrote '" + path_ + "' but cannot open its directory '" + dir_ + "' to sync it", errno);
  }
  if (::fsync(dfd.fd) != 0 && errno != EINVAL) {
    return io_error(verb_ + ": wrote '" + path_ + "' but cannot sync its directory '" + dir_ + "'", errno);
  }
  return Status::Ok();
}

}  // namespace vlk
