#pragma once

// HTTP/1.1 message heads written straight into a string: the start line, the fields in the
// message's order, the blank line. The body is not copied; the caller writes it as a second
// buffer (one gathered write). Byte for byte what Beast's serializer writes for a message with a
// string body, without its per-buffer machinery on every write.

#include <string>
#include <string_view>

#include "lib/http/http_server.h"

namespace sluice {

// Appends "HTTP/<major>.<minor>" of a Beast version number (11: HTTP/1.1).
void AppendVersion(unsigned version, std::string& out);

// Appends "HTTP/1.x <code> <reason>\r\n", the fields and "\r\n" to `out`.
void AppendResponseHead(const HttpResponse& response, std::string& out);

// Appends "<method> <target> HTTP/1.x\r\n".
void AppendRequestLine(std::string_view method, std::string_view target, unsigned version,
                       std::string& out);

// Appends "<name>: <value>\r\n".
inline void AppendField(std::string_view name, std::string_view value, std::string& out) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace sluice
