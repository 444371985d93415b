#include "lib/http/wire.h"

#include <gtest/gtest.h>

#include <boost/beast/http/write.hpp>
#include <sstream>

namespace sluice {
namespace {

namespace http = boost::beast::http;

// What Beast's serializer writes for the message (head and body).
template <bool isRequest>
std::string Beast(const http::message<isRequest, http::string_body>& m) {
  std::ostringstream out;
  out << m;
  return out.str();
}

TEST(WireTest, ResponseHeadIsWhatBeastWrites) {
  HttpResponse r{HttpStatus::ok, 11};
  r.set(http::field::content_type, "application/json");
  r.set("X-Sluice-Revision", "fraud-abc");
  r.insert("Set-Cookie", "a=1");
  r.insert("Set-Cookie", "b=2");  // repeated fields keep their order
  r.body() = R"({"outputs":[]})";
  r.keep_alive(true);
  r.prepare_payload();
  std::string head;
  AppendResponseHead(r, head);
  EXPECT_EQ(head + r.body(), Beast(r));
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;

  // HTTP/1.0 keep-alive, a status with a custom reason, an empty body.
  HttpResponse old{HttpStatus::service_unavailable, 10};
  old.reason("Draining");
  old.keep_alive(true);
  old.prepare_payload();
  head.clear();
  AppendResponseHead(old, head);
  EXPECT_EQ(head, Beast(old));
  EXPECT_EQ(head.rfind("HTTP/1.0 503 Draining\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Connection: keep-alive\r\n"), std::string::npos) << head;

  // An unknown status code keeps its number.
  HttpResponse odd{static_cast<HttpStatus>(299), 11};
  odd.prepare_payload();
  head.clear();
  AppendResponseHead(odd, head);
  EXPECT_EQ(head, Beast(odd));
}

TEST(WireTest, RequestLineAndFieldsAreWhatBeastWrites) {
  HttpRequest r{http::verb::post, "/v2/models/fraud/infer?x=1", 11};
  r.set(http::field::host, "fraud.ml:80");
  r.set("Inference-Header-Content-Length", "12");
  r.body() = "{}";
  r.prepare_payload();
  std::string bytes;
  AppendRequestLine(r.method_string(), r.target(), r.version(), bytes);
  for (const auto& f : r) AppendField(f.name_string(), f.value(), bytes);
  bytes += "\r\n" + r.body();
  EXPECT_EQ(bytes, Beast(r));
}

}  // namespace
}  // namespace sluice
