#pragma once

// Where a source's bytes come from: a local file, or an http(s) download kept in an unlinked
// temporary file, read by offset either way so the Parquet reader can seek to the column chunks it
// needs and the CSV reader can stream.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "lib/base/status.h"

namespace sluice::features {

class SourceFile {
 public:
  // `uri`: an absolute path, file:///path, http:// or https://. Anything else is InvalidArgument.
  static Result<std::unique_ptr<SourceFile>> Open(const std::string& uri,
                                                  std::chrono::seconds http_timeout);
  ~SourceFile();
  SourceFile(const SourceFile&) = delete;
  SourceFile& operator=(const SourceFile&) = delete;

  uint64_t size() const { return size_; }
  // The uri as given, for messages.
  const std::string& name() const { return name_; }

  // Reads exactly [offset, offset + len) into `out` (resized to len); an error when that range
  // is not inside the file.
  Status ReadAt(uint64_t offset, uint64_t len, std::string& out) const;
  // Reads up to `len` bytes at `offset`; 0 at the end of the file.
  Result<size_t> ReadSome(uint64_t offset, char* out, size_t len) const;

 private:
  SourceFile(int fd, uint64_t size, std::string name)
      : fd_(fd), size_(size), name_(std::move(name)) {}

  int fd_;
  uint64_t size_;
  std::string name_;
};

// The path part of a uri (for the extension), without a query or fragment.
std::string UriPath(const std::string& uri);

}  // namespace sluice::features
