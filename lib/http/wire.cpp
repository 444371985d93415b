#include "lib/http/wire.h"

#include <charconv>

namespace sluice {

void AppendVersion(unsigned version, std::string& out) {
  out.append("HTTP/");
  out.push_back(static_cast<char>('0' + version / 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + version % 10));
}

void AppendResponseHead(const HttpResponse& response, std::string& out) {
  AppendVersion(response.version(), out);
  out.push_back(' ');
  char code[8];
  const auto [end, ec] = std::to_chars(code, code + sizeof(code), response.result_int());
  out.append(code, end);
  out.push_back(' ');
  out.append(response.reason());
  out.append("\r\n");
  for (const auto& f : response) AppendField(f.name_string(), f.value(), out);
  out.append("\r\n");
}

void AppendRequestLine(std::string_view method, std::string_view target, unsigned version,
                       std::string& out) {
  out.append(method);
  out.push_back(' ');
  out.append(target);
  out.push_back(' ');
  AppendVersion(version, out);
  out.append("\r\n");
}

}  // namespace sluice
