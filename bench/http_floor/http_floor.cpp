// sluice-bench-http-floor: the HTTP stack sluice-server runs on (lib/http's HttpServer, the same
// options: io threads, limits, keep-alive), answering every POST to --path with a fixed body and
// doing nothing else. Its saturation is the floor of the HTTP stack: what sluice-server would
// reach if parsing the V2 request, the model and the answer cost nothing. bench/run.sh runs both
// under the same load and pinning and reports sluice-server's share of it.
//
//   sluice-bench-http-floor --port P [--address A] [--io-threads N] [--path /p]
//                           [--body-file F] [--content-type T]
// The body defaults to a V2 answer of the fraud model's size. The request body is read in full
// (as sluice-server reads it) and ignored. Stops on SIGINT or SIGTERM.

#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "lib/http/http_server.h"

namespace {

struct Options {
  std::string address = "127.0.0.1";
  int port = 0;
  int io_threads = 1;
  std::string path = "/v2/models/fraud/infer";
  std::string body =
      R"({"model_name":"fraud","model_version":"1","id":"bench","outputs":[{"name":"predict",)"
      R"("shape":[1],"datatype":"FP32","data":[0.0012345678]}]})";
  std::string content_type = "application/json";
};

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "usage: sluice-bench-http-floor --port P [--address A] [--io-threads N] "
                   "[--path /p] [--body-file F] [--content-type T]\n";
      return false;
    }
    const std::string v = argv[++i];
    if (a == "--port") {
      o.port = std::stoi(v);
    } else if (a == "--address") {
      o.address = v;
    } else if (a == "--io-threads") {
      o.io_threads = std::stoi(v);
    } else if (a == "--path") {
      o.path = v;
    } else if (a == "--content-type") {
      o.content_type = v;
    } else if (a == "--body-file") {
      std::ifstream in(v, std::ios::binary);
      if (!in) {
        std::cerr << "cannot read " << v << "\n";
        return false;
      }
      o.body.assign(std::istreambuf_iterator<char>(in), {});
    } else {
      std::cerr << "unknown argument " << a << "\n";
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // the io threads inherit the mask

  auto router = std::make_shared<sluice::HttpRouter>();
  router->Handle(sluice::HttpVerb::post, o.path,
                 [&o](const sluice::HttpRequest&, sluice::Responder responder) {
                   responder.SendBody(sluice::HttpStatus::ok, o.content_type, o.body);
                 });
  router->Handle(sluice::HttpVerb::get, "/v2/health/ready",
                 [](const sluice::HttpRequest&, sluice::Responder responder) {
                   responder.SendBody(sluice::HttpStatus::ok, "text/plain", "");
                 });
  sluice::HttpServerOptions options;
  options.address = o.address;
  options.port = static_cast<uint16_t>(o.port);
  options.io_threads = o.io_threads;
  options.server_name = "sluice-server";
  auto server = sluice::HttpServer::Create(options, router);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  std::cout << "listening on " << o.address << ":" << server.value()->port() << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  server.value()->Shutdown();
  return 0;
}
