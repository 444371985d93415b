// sluice-loadgen: an open-loop HTTP/1.1 load generator for latency at a fixed offered load.
//
// Requests are due at fixed intervals (start + i / rate), whatever the server does. Each is sent on
// an idle keep-alive connection (one request in flight per connection, no pipelining); when none is
// idle it waits in a queue. Latency is measured from the moment the request was due, not from when
// it was written, so a stalled server is charged for every request it delayed (no coordinated
// omission, as in wrk2). One thread, epoll, a timerfd for sub-millisecond pacing.
//
// The loadgen reports its own measurement error next to the latency: `slip` is how late it noticed
// that a request was due (timer wake-up plus loop time; large when the loadgen itself was kept off
// a CPU), and `conn_waits` counts requests that found every connection busy (the server was
// behind). A latency tail with a small slip and no connection waits happened in the server or the
// kernel, not here. `cpu_pct` is the loadgen's own CPU time over the run (100 = one core busy).
//
// Whether the offered rate was sustained, i.e. whether the latency is the server's and not the
// loadgen's, is decided here from those three, with bounds that are flags (defaults in Options):
//   - the loadgen's CPU below --max-cpu-pct (70 % of one core): above that, its own loop delays
//     sends and reads, and a busier loadgen is one wake-up away from being the bottleneck;
//   - slip p99 at most --max-slip-fraction (0.1) of the measured latency p99, or below
//     --slip-floor-us (20 us, the timer and scheduler granularity), whichever is larger: the
//     latency is measured from the due time, so a larger slip would be part of the figure;
//   - connection waits at most --max-conn-wait-fraction (0.001) of the measured requests:
//     requests that waited for a connection were held back by the loadgen's connection count;
//   - no errors and at least 99 % of the measured requests answered.
// The summary says `sustained=1` or `sustained=0` with `unsustained_by=` naming the bounds missed.
//
// Output: one summary line of key=value pairs (easy to parse from shell) and, with --verbose, a
// percentile table. With --hist-out FILE, the latency histogram of the measured requests goes to
// FILE, one "<upper edge in ns> <count>" line per non-empty bucket (bench/plot_latency.py reads
// it).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Log-linear histogram of nanosecond values: 128 sub-buckets per power of two, so any recorded
// value is reported within 1% (the HDR histogram idea, at a fixed precision).
class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int kSub = 1 << kSubBits;

  void Record(uint64_t v) {
    ++counts_[Index(v)];
    ++total_;
    max_ = std::max(max_, v);
  }
  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }

  // One "<upper edge in ns> <count>" line per non-empty bucket, in increasing order.
  bool Dump(const std::string& path) const {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return false;
    for (size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] == 0) continue;
      std::fprintf(f, "%lu %lu\n", static_cast<unsigned long>(std::min(UpperEdge(i), max_)),
                   static_cast<unsigned long>(counts_[i]));
    }
    return std::fclose(f) == 0;
  }

  // The value at quantile q (0..1): the upper edge of the bucket holding it.
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= std::max<uint64_t>(rank, 1)) return std::min(UpperEdge(i), max_);
    }
    return max_;
  }

 private:
  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - kSubBits;
    return static_cast<size_t>((shift + 1) * kSub + ((v >> shift) & (kSub - 1)));
  }
  static uint64_t UpperEdge(size_t i) {
    if (i < kSub) return i;
    const int shift = static_cast<int>(i / kSub) - 1;
    const uint64_t sub = i % kSub;
    return ((kSub + sub + 1) << shift) - 1;
  }

  std::array<uint64_t, 64 * kSub> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

// The loadgen shares the machine with the server it measures, so the response path allocates
// nothing per header.
bool HasPrefixNoCase(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  std::string body_file;
  std::string content_type = "application/json";
  std::vector<std::string> headers;
  double rate = 1000;  // requests per second
  int connections = 16;
  double duration = 10;  // seconds measured
  double warmup = 2;     // seconds sent but not measured
  bool verbose = false;
  // Requests slower than this are listed on stderr with their due time (CLOCK_MONOTONIC seconds,
  // the clock of `perf record -k mono`), to line a tail up with a scheduler trace. 0: none.
  double trace_slower_than_us = 0;
  std::string hist_out;  // latency histogram file; empty: none
  // Bounds for `sustained` (see the header comment).
  double max_cpu_pct = 70;
  double max_slip_fraction = 0.1;
  double slip_floor_us = 20;
  double max_conn_wait_fraction = 0.001;
};

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host") o.host = next();
    else if (a == "--port") o.port = std::stoi(next());
    else if (a == "--path") o.path = next();
    else if (a == "--body-file") o.body_file = next();
    else if (a == "--content-type") o.content_type = next();
    else if (a == "--header") o.headers.push_back(next());
    else if (a == "--rate") o.rate = std::stod(next());
    else if (a == "--connections") o.connections = std::stoi(next());
    else if (a == "--duration") o.duration = std::stod(next());
    else if (a == "--warmup") o.warmup = std::stod(next());
    else if (a == "--verbose") o.verbose = true;
    else if (a == "--trace-slower-than-us") o.trace_slower_than_us = std::stod(next());
    else if (a == "--hist-out")
      o.hist_out = next();
    else if (a == "--max-cpu-pct")
      o.max_cpu_pct = std::stod(next());
    else if (a == "--max-slip-fraction")
      o.max_slip_fraction = std::stod(next());
    else if (a == "--slip-floor-us")
      o.slip_floor_us = std::stod(next());
    else if (a == "--max-conn-wait-fraction")
      o.max_conn_wait_fraction = std::stod(next());
    else {
      std::cerr << "unknown argument " << a << "\n"
                << "usage: sluice-loadgen --port P [--host H] [--path /p] [--body-file F]\n"
                   "  [--content-type T] [--header 'K: V']... [--rate R] [--connections C]\n"
                   "  [--duration S] [--warmup S] [--verbose]\n"
                   "  [--trace-slower-than-us N] [--hist-out FILE]\n"
                   "  [--max-cpu-pct P] [--max-slip-fraction F] [--slip-floor-us U]\n"
                   "  [--max-conn-wait-fraction F]\n";
      return false;
    }
  }
  return o.port > 0 && o.rate > 0 && o.connections > 0;
}

struct Conn {
  int fd = -1;
  bool busy = false;
  bool want_out = false;      // registered for EPOLLOUT (a write is blocked)
  bool measured = false;      // the request in flight counts
  Clock::time_point due;      // when the request in flight was due
  std::string in;             // response bytes read so far
  size_t out_off = 0;         // bytes of the request written so far
};

class LoadGen {
 public:
  explicit LoadGen(Options o) : o_(std::move(o)) {}

  int Run() {
    std::string body;
    if (!o_.body_file.empty()) {
      std::ifstream in(o_.body_file, std::ios::binary);
      if (!in) {
        std::cerr << "cannot read " << o_.body_file << "\n";
        return 2;
      }
      body.assign(std::istreambuf_iterator<char>(in), {});
    }
    request_ = std::string(body.empty() ? "GET " : "POST ") + o_.path + " HTTP/1.1\r\nHost: " +
               o_.host + "\r\n";
    if (!body.empty()) {
      request_ += "Content-Type: " + o_.content_type + "\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n";
    }
    for (const auto& h : o_.headers) request_ += h + "\r\n";
    request_ += "\r\n" + body;

    ep_ = epoll_create1(0);
    tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    epoll_ctl(ep_, EPOLL_CTL_ADD, tfd_, &ev);
    conns_.resize(static_cast<size_t>(o_.connections));
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (!Connect(i)) return 1;
    }

    const auto interval = std::chrono::duration<double>(1.0 / o_.rate);
    cpu_start_ = CpuSeconds();
    start_ = Clock::now();
    measure_from_ = start_ + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(o_.warmup));
    const auto end = measure_from_ + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(o_.duration));
    uint64_t i = 0;
    std::array<epoll_event, 256> events;
    while (true) {
      const auto now = Clock::now();
      // Everything due by now joins the queue.
      while (true) {
        const auto due = start_ + std::chrono::duration_cast<Clock::duration>(interval * i);
        if (due > now || due >= end) break;
        if (due >= measure_from_) {
          if (first_measured_ == UINT64_MAX) first_measured_ = i;
          slip_.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(now - due).count()));
        }
        queue_.push_back({due, i});
        ++i;
      }
      Dispatch();
      CountConnWaits();
      const auto next_due = start_ + std::chrono::duration_cast<Clock::duration>(interval * i);
      if (next_due >= end && queue_.empty() && InFlight() == 0) break;
      if (next_due >= end && now > end + std::chrono::seconds(5)) break;  // stragglers
      ArmTimer(std::min(next_due, end + std::chrono::seconds(5)));
      const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 1000);
      for (int k = 0; k < n; ++k) {
        if (events[k].data.u64 == UINT64_MAX) {
          uint64_t expirations;
          [[maybe_unused]] auto r = read(tfd_, &expirations, sizeof(expirations));
          continue;
        }
        OnEvent(static_cast<size_t>(events[k].data.u64), events[k].events);
      }
    }
    wall_ = std::chrono::duration<double>(Clock::now() - start_).count();
    cpu_ = CpuSeconds() - cpu_start_;
    return Report() ? 0 : 1;
  }

 private:
  bool Connect(size_t i) {
    Conn& c = conns_[i];
    if (c.fd >= 0) close(c.fd);
    c = Conn{};
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(o_.port));
    inet_pton(AF_INET, o_.host.c_str(), &addr.sin_addr);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::cerr << "connect " << o_.host << ":" << o_.port << ": " << std::strerror(errno) << "\n";
      return false;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  static double CpuSeconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
  }

  // Whatever is still queued right after a dispatch found every connection busy. The queue is in
  // sequence order, so the requests not yet counted are its tail.
  void CountConnWaits() {
    if (queue_.empty() || first_measured_ == UINT64_MAX) return;
    const uint64_t from = std::max({queue_.front().seq, counted_until_, first_measured_});
    const uint64_t to = queue_.back().seq + 1;
    if (to > from) conn_waits_ += to - from;
    counted_until_ = std::max(counted_until_, to);
  }

  // Re-armed only when the wake-up time changes: one timerfd_settime per due request, not per loop.
  void ArmTimer(Clock::time_point when) {
    if (when == armed_) return;
    armed_ = when;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    itimerspec spec{};
    spec.it_value.tv_sec = ns / 1'000'000'000;
    spec.it_value.tv_nsec = ns % 1'000'000'000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    timerfd_settime(tfd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  size_t InFlight() const {
    size_t n = 0;
    for (const auto& c : conns_) n += c.busy;
    return n;
  }

  void Dispatch() {
    for (size_t i = 0; i < conns_.size() && !queue_.empty(); ++i) {
      Conn& c = conns_[i];
      if (c.busy) continue;
      c.busy = true;
      c.due = queue_.front().due;
      c.measured = c.due >= measure_from_;
      queue_.pop_front();
      c.out_off = 0;
      c.in.clear();
      if (c.measured) ++sent_;
      Write(i);
    }
  }

  void Write(size_t i) {
    Conn& c = conns_[i];
    while (c.out_off < request_.size()) {
      const ssize_t n = send(c.fd, request_.data() + c.out_off, request_.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.want_out) SetWantOut(i, true);
        return;
      }
      Fail(i, "write");
      return;
    }
    if (c.want_out) SetWantOut(i, false);
  }

  // A one-row request fits the socket buffer, so EPOLLOUT is almost never needed; asking for it
  // only after a short write saves an epoll_ctl per request.
  void SetWantOut(size_t i, bool on) {
    Conn& c = conns_[i];
    c.want_out = on;
    epoll_event ev{};
    ev.events = on ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void Fail(size_t i, const char* what) {
    if (conns_[i].busy && conns_[i].measured) {
      ++done_;
      ++errors_[std::string("socket ") + what];
    }
    Connect(i);
  }

  void OnEvent(size_t i, uint32_t events) {
    Conn& c = conns_[i];
    if (events & EPOLLOUT) Write(i);
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    char buf[65536];
    while (true) {
      const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        // A short read drained the socket; epoll is level-triggered and reports anything that
        // arrives later, so the recv that would only say EAGAIN is skipped.
        if (static_cast<size_t>(n) < sizeof(buf)) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Fail(i, n == 0 ? "closed" : "read");
      return;
    }
    TryComplete(i);
  }

  void TryComplete(size_t i) {
    Conn& c = conns_[i];
    const size_t head_end = c.in.find("\r\n\r\n");
    if (head_end == std::string::npos) return;
    std::string_view head(c.in.data(), head_end);
    size_t length = 0;
    bool close_after = false;
    for (size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
      const size_t next = head.find("\r\n", pos + 2);
      std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? head.npos : next - pos - 2);
      if (HasPrefixNoCase(line, "content-length:")) {
        std::string_view v = line.substr(15);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        std::from_chars(v.data(), v.data() + v.size(), length);
      } else if (HasPrefixNoCase(line, "connection:") &&
                 line.find("close") != std::string_view::npos) {
        close_after = true;
      }
      pos = next;
    }
    if (c.in.size() < head_end + 4 + length) return;
    int status = 0;
    if (head.size() > 12) std::from_chars(head.data() + 9, head.data() + 12, status);
    const auto now = Clock::now();
    if (c.busy && c.measured) {
      ++done_;
      last_done_ = now;
      if (status >= 200 && status < 300) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.due).count();
        hist_.Record(static_cast<uint64_t>(ns));
        if (o_.trace_slower_than_us > 0 &&
            static_cast<double>(ns) > o_.trace_slower_than_us * 1e3) {
          std::fprintf(stderr, "slow due=%.6f latency_us=%.1f conn=%zu\n",
                       std::chrono::duration<double>(c.due.time_since_epoch()).count(),
                       static_cast<double>(ns) / 1e3, i);
        }
      } else {
        ++errors_["status " + std::to_string(status)];
      }
    }
    c.busy = false;
    c.in.erase(0, head_end + 4 + length);
    if (close_after) Connect(i);
    Dispatch();
  }

  // False when the histogram file cannot be written.
  bool Report() {
    const double secs = std::chrono::duration<double>(o_.duration).count();
    uint64_t errors = 0;
    for (const auto& [k, v] : errors_) errors += v;
    const uint64_t unanswered = sent_ > done_ ? sent_ - done_ : 0;
    auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    const double cpu_pct = wall_ > 0 ? 100.0 * cpu_ / wall_ : 0.0;
    const double p99 = us(hist_.Quantile(0.99));
    const double slip_p99 = us(slip_.Quantile(0.99));
    const double slip_bound = std::max(o_.slip_floor_us, o_.max_slip_fraction * p99);
    const double wait_bound = o_.max_conn_wait_fraction * static_cast<double>(sent_);
    std::string missed;
    auto miss = [&missed](const char* what) {
      if (!missed.empty()) missed += ',';
      missed += what;
    };
    if (cpu_pct >= o_.max_cpu_pct) miss("cpu");
    if (slip_p99 > slip_bound) miss("slip");
    if (static_cast<double>(conn_waits_) > wait_bound) miss("conn_waits");
    if (errors > 0) miss("errors");
    if (sent_ == 0 || static_cast<double>(hist_.total()) < 0.99 * static_cast<double>(sent_)) {
      miss("answered");
    }
    std::printf(
        "target_rate=%.0f achieved_rate=%.1f sent=%lu ok=%lu errors=%lu unanswered=%lu "
        "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f slip_us_p50=%.1f "
        "slip_us_p99=%.1f slip_us_max=%.1f conn_waits=%lu cpu_pct=%.0f sustained=%d%s%s\n",
        o_.rate, static_cast<double>(hist_.total()) / secs, static_cast<unsigned long>(sent_),
        static_cast<unsigned long>(hist_.total()), static_cast<unsigned long>(errors),
        static_cast<unsigned long>(unanswered), us(hist_.Quantile(0.5)), us(hist_.Quantile(0.9)),
        p99, us(hist_.Quantile(0.999)), us(hist_.max()), us(slip_.Quantile(0.5)), slip_p99,
        us(slip_.max()), static_cast<unsigned long>(conn_waits_), cpu_pct, missed.empty() ? 1 : 0,
        missed.empty() ? "" : " unsustained_by=", missed.c_str());
    if (o_.verbose) {
      for (double q : {0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0}) {
        std::printf("  p%-7g %10.1f us\n", q * 100, us(hist_.Quantile(q)));
      }
      for (const auto& [k, v] : errors_) std::printf("  error %s: %lu\n", k.c_str(), static_cast<unsigned long>(v));
    }
    if (!o_.hist_out.empty() && !hist_.Dump(o_.hist_out)) {
      std::cerr << "cannot write " << o_.hist_out << "\n";
      return false;
    }
    return true;
  }

  Options o_;
  std::string request_;
  int ep_ = -1;
  int tfd_ = -1;
  std::vector<Conn> conns_;
  struct Due {
    Clock::time_point due;
    uint64_t seq;  // position in the schedule
  };
  std::deque<Due> queue_;
  Clock::time_point start_, measure_from_, last_done_;
  Clock::time_point armed_{};           // when the timerfd is set to fire
  Histogram hist_;
  Histogram slip_;  // from due to the loop noticing it, measured requests
  uint64_t conn_waits_ = 0;
  double cpu_start_ = 0, cpu_ = 0, wall_ = 0;
  uint64_t first_measured_ = UINT64_MAX;  // sequence number of the first measured request
  uint64_t counted_until_ = 0;            // requests below this sequence number were considered
  uint64_t sent_ = 0;
  uint64_t done_ = 0;
  std::map<std::string, uint64_t> errors_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  return LoadGen(std::move(o)).Run();
}
