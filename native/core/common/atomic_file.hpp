// File helpers shared by the core's file formats (core/common): errno text, full pread/pwrite
// loops, an owning file descriptor, and AtomicFile, the "write a temporary file next to the target,
// fsync it, rename it over the target, fsync the directory" sequence that index/index_file and
// io/safetensors use so that a reader never sees a half-written file. POSIX; no Node-API.
#pragma once

#include <cstdint>
#include <string>

#include "common/cancel.hpp"
#include "common/status.hpp"

namespace vlk {

/// strerror_r text of `err` (thread-safe).
std::string errno_string(int err);

/// kIo with message "<what>: <strerror(err)>".
Status io_error(const std::string& what, int err);

/// An owned file descriptor (-1: none), closed by the destructor.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  /// Closes the descriptor (if any); returns close()'s result (0 when there was none).
  int reset();
};

/// Reads up to n bytes at offset `at`, retrying on EINTR and short reads; *got is what was read
/// (short only at end of file). False (errno set) on a read error.
bool pread_full(int fd, uint8_t* p, int64_t n, int64_t at, int64_t* got);

/// Writes n bytes at offset `at`, retrying on EINTR and short writes. False (errno set) on error.
bool pwrite_full(int fd, const uint8_t* p, int64_t n, int64_t at);

/// Writes a file atomically. create() makes a hidden temporary file in the target's directory
/// (same file system, so the final rename is atomic; O_EXCL, mode 0644 less the umask);
/// write_at() fills it; commit() fsyncs and closes it, renames it over the target and fsyncs the
/// directory. Until commit() succeeds an existing target is untouched; any failure, and the
/// destructor of an uncommitted file, remove the temporary file. Messages start with `verb`
/// ("save: cannot write '...'"), the same wording every format uses.
class AtomicFile {
 public:
  AtomicFile() = default;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() { discard(); }

  /// kIo (naming the temporary file, the target and the system's reason) when it cannot be made.
  Status create(const std::string& path, const std::string& verb = "save");
  /// kIo naming the temporary file; the temporary file is removed.
  Status write_at(int64_t pos, const uint8_t* p, int64_t n);
  /// fsync, close, then (unless `cancel` is set: kAborted "<verb> cancelled", nothing renamed)
  /// rename over the target and fsync its directory. Some file systems cannot fsync a directory
  /// (EINVAL): ignored. A kIo from that last step means the file is in place but its durability is
  /// not confirmed.
  Status commit(const CancelFlag* cancel = nullptr);
  /// Closes and removes the temporary file (no-op once committed or when none was created).
  void discard();

  const std::string& temp_path() const { return tmp_; }

 private:
  Status fail(Status s);

  std::string path_, dir_, tmp_, verb_;
  Fd fd_;
  bool live_ = false;  // a temporary file exists that this object must remove
};

}  // namespace vlk
