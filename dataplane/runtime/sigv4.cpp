#include "dataplane/runtime/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

namespace sluice::dataplane {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trims the value and collapses runs of spaces into one, as the canonical headers require.
std::string CanonicalValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string HexOf(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Sha256HexOf(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  return HexOf(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string AwsUriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string AmzDate(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

SigV4Result SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                   const SigV4Scope& scope, std::chrono::system_clock::time_point now) {
  SigV4Result r;
  const std::string amz_date = AmzDate(now);
  const std::string date = amz_date.substr(0, 8);

  // Canonical headers: lower-case names, sorted; repeated names joined with commas in order.
  std::map<std::string, std::string> headers;
  auto add = [&](std::string_view name, std::string_view value) {
    std::string& slot = headers[Lower(name)];
    if (!slot.empty()) slot.push_back(',');
    slot += CanonicalValue(value);
  };
  add("host", request.host);
  add("x-amz-date", amz_date);
  if (!credentials.session_token.empty()) add("x-amz-security-token", credentials.session_token);
  for (const auto& [name, value] : request.headers) {
    const std::string n = Lower(name);
    if (n == "host" || n == "x-amz-date" || n == "authorization") continue;
    add(n, value);
  }
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers += name;
  }

  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [k, v] : request.query) {
    query.emplace_back(AwsUriEncode(k, false), AwsUriEncode(v, false));
  }
  std::sort(query.begin(), query.end());
  std::string canonical_query;
  for (const auto& [k, v] : query) {
    if (!canonical_query.empty()) canonical_query.push_back('&');
    canonical_query += k + "=" + v;
  }

  r.canonical_request = request.method + "\n" + (request.path.empty() ? "/" : request.path) + "\n" +
                        canonical_query + "\n" + canonical_headers + "\n" + signed_headers + "\n" +
                        request.payload_sha256;
  const std::string credential_scope =
      date + "/" + scope.region + "/" + scope.service + "/aws4_request";
  r.string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + credential_scope + "\n" +
                     Sha256HexOf(r.canonical_request);

  std::string key = HmacSha256("AWS4" + credentials.secret_access_key, date);
  key = HmacSha256(key, scope.region);
  key = HmacSha256(key, scope.service);
  key = HmacSha256(key, "aws4_request");
  r.signature = HexOf(HmacSha256(key, r.string_to_sign));
  // The derived key is as good as the secret for a day: do not leave it in freed memory.
  std::fill(key.begin(), key.end(), '\0');

  r.headers_to_add.emplace_back("Authorization",
                                "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" +
                                    credential_scope + ", SignedHeaders=" + signed_headers +
                                    ", Signature=" + r.signature);
  r.headers_to_add.emplace_back("X-Amz-Date", amz_date);
  if (!credentials.session_token.empty()) {
    r.headers_to_add.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  return r;
}

}  // namespace sluice::dataplane
