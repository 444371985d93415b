#include "dataplane/runtime/model_store.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "dataplane/runtime/sigv4.h"

namespace sluice::dataplane {
namespace {

bool Exists(const std::string& path, uint64_t* size = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (size != nullptr) *size = static_cast<uint64_t>(st.st_size);
  return true;
}

std::string Base(const std::string& uri, const std::string& sha256) {
  std::string stem = UriStem(uri);
  for (char& c : stem) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  }
  if (stem.empty() || stem[0] == '.') stem = "model" + stem;
  return stem + "-" + Sha256Hex(uri + "\n" + sha256).substr(0, 16);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<std::string> Sha256OfFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Unavailable("open " + path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(size_t{1} << 20);
  for (;;) {
    const size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    EVP_DigestUpdate(md.get(), buf.data(), n);
    if (n < buf.size()) break;
  }
  if (std::ferror(f.get())) return Unavailable("read " + path + ": I/O error");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md.get(), digest, &len);
  return HexOf(std::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace

std::string LocalModelName(const std::string& uri, const std::string& sha256) {
  const std::string ext = UriExtension(uri);
  return Base(uri, sha256) + (ext.empty() ? "" : "." + ext);
}

Result<LocalModel> FetchModelToDir(const ModelSource& source, const std::string& dir,
                                   const FetchOptions& options) {
  if (dir.empty()) return InvalidArgument("empty model directory");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Unavailable("mkdir " + dir + ": " + std::strerror(errno));
  }
  const std::string base = dir + "/" + Base(source.uri, source.sha256);
  LocalModel m;
  m.path = dir + "/" + LocalModelName(source.uri, source.sha256);
  const std::string reference = base + ".reference.json";
  const std::string no_reference = base + ".no-reference";
  const auto start = std::chrono::steady_clock::now();

  bool have_model = Exists(m.path, &m.bytes);
  if (have_model && !source.sha256.empty()) {
    // The digest is pinned: trust the file only if it still matches (a disk can lie).
    ASSIGN_OR_RETURN(std::string got, Sha256OfFile(m.path));
    if ("sha256:" + got != Lower(source.sha256)) {
      ::unlink(m.path.c_str());
      have_model = false;
    }
  }
  bool fetched = false;
  if (!have_model) {
    fetched = true;
    ASSIGN_OR_RETURN(FetchResult got, FetchToFile(source.uri, m.path, options, source.sha256));
    m.bytes = got.bytes;
    m.fetched_bytes += got.bytes;
    m.attempts = got.attempts;
  }

  if (Exists(reference)) {
    m.reference_path = reference;
  } else if (!Exists(no_reference) || !source.reference_uri.empty()) {
    const bool explicit_ref = !source.reference_uri.empty();
    fetched = true;
    const std::string ref_uri = explicit_ref ? source.reference_uri : ReferenceUriFor(source.uri);
    Result<FetchResult> got = FetchToFile(ref_uri, reference, options);
    if (got.ok()) {
      m.reference_path = reference;
      m.fetched_bytes += got->bytes;
    } else if (!explicit_ref && (got.status().code() == StatusCode::kNotFound ||
                                 got.status().code() == StatusCode::kForbidden ||
                                 got.status().code() == StatusCode::kUnauthorized)) {
      // None beside the model (S3 answers 403 for a missing key without ListBucket).
      std::ofstream(no_reference) << ref_uri << "\n";
    } else {
      return got.status().Annotate("reference " + RedactUri(ref_uri));
    }
  }
  m.reused = !fetched;
  if (!m.reused) {
    m.fetch_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return m;
}

}  // namespace sluice::dataplane
