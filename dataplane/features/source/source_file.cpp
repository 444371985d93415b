#include "dataplane/features/source/source_file.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace sluice::features {

namespace {

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

Result<uint64_t> FileSize(int fd, const std::string& name) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Internal(Errno("stat " + name));
  if (!S_ISREG(st.st_mode)) return InvalidArgument(name + " is not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

struct Download {
  int fd = -1;
  bool write_failed = false;
};

size_t WriteToFile(char* data, size_t size, size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  size_t total = size * n;
  size_t done = 0;
  while (done < total) {
    ssize_t w = write(d->fd, data + done, total - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      d->write_failed = true;
      return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
    }
    done += static_cast<size_t>(w);
  }
  return total;
}

// Downloads `url` into an unlinked temporary file and returns its descriptor.
Result<int> DownloadToTemp(const std::string& url, std::chrono::seconds timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/sluice-source-XXXXXX";
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return Internal(Errno("creating a temporary file for " + url));
  unlink(tmpl.c_str());  // gone from the directory; lives until the descriptor is closed

  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    close(fd);
    return Internal("curl_easy_init failed");
  }
  Download d{fd};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, WriteToFile);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(easy);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(easy);

  if (d.write_failed) {
    close(fd);
    return Internal(Errno("GET " + url + ": writing the download"));
  }
  if (rc != CURLE_OK) {
    close(fd);
    std::string msg = "GET " + url + ": " + (errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout(msg);
    return Unavailable(msg);
  }
  if (status < 200 || status >= 300) {
    close(fd);
    Status s(status == 404 ? StatusCode::kNotFound : StatusCode::kUnavailable,
             "GET " + url + ": HTTP " + std::to_string(status));
    s.WithHttpStatus(static_cast<int>(status));
    return s;
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<SourceFile>> SourceFile::Open(const std::string& uri,
                                                     std::chrono::seconds http_timeout) {
  std::string path;
  if (StartsWith(uri, "file://")) {
    path = uri.substr(7);
    if (path.empty() || path[0] != '/') {
      return InvalidArgument("source " + uri +
                             ": a file uri needs an absolute path (file:///path)");
    }
  } else if (!uri.empty() && uri[0] == '/') {
    path = uri;
  } else if (StartsWith(uri, "http://") || StartsWith(uri, "https://")) {
    ASSIGN_OR_RETURN(int fd, DownloadToTemp(uri, http_timeout));
    auto size = FileSize(fd, uri);
    if (!size.ok()) {
      close(fd);
      return size.status();
    }
    return std::unique_ptr<SourceFile>(new SourceFile(fd, *size, uri));
  } else {
    size_t colon = uri.find("://");
    std::string scheme = colon == std::string::npos ? "" : uri.substr(0, colon);
    if (scheme.empty()) {
      return InvalidArgument("source " + uri +
                             ": not an absolute path, file:///path or http(s):// url");
    }
    return InvalidArgument("source " + uri + ": the " + scheme + ":// scheme is not supported yet");
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(Errno("opening " + uri));
    return Unavailable(Errno("opening " + uri));
  }
  auto size = FileSize(fd, uri);
  if (!size.ok()) {
    close(fd);
    return size.status();
  }
  return std::unique_ptr<SourceFile>(new SourceFile(fd, *size, uri));
}

SourceFile::~SourceFile() {
  close(fd_);
}

Status SourceFile::ReadAt(uint64_t offset, uint64_t len, std::string& out) const {
  if (offset > size_ || len > size_ - offset) {
    return InvalidArgument(name_ + ": reading " + std::to_string(len) + " bytes at offset " +
                           std::to_string(offset) + " is past the end of the file (" +
                           std::to_string(size_) + " bytes); the file is truncated or corrupt");
  }
  out.resize(len);
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd_, out.data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(Errno("reading " + name_));
    }
    if (n == 0) return InvalidArgument(name_ + ": the file shrank while being read");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Result<size_t> SourceFile::ReadSome(uint64_t offset, char* out, size_t len) const {
  while (true) {
    ssize_t n = pread(fd_, out, len, static_cast<off_t>(offset));
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return Unavailable(Errno("reading " + name_));
  }
}

std::string UriPath(const std::string& uri) {
  std::string path = uri;
  size_t scheme = path.find("://");
  if (scheme != std::string::npos) {
    size_t slash = path.find('/', scheme + 3);
    path = slash == std::string::npos ? "" : path.substr(slash);
  }
  size_t cut = path.find_first_of("?#");
  if (cut != std::string::npos && scheme != std::string::npos) path.resize(cut);
  return path;
}

}  // namespace sluice::features
