#include "e2e/procnode/pod_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>
#include <vector>

namespace sluice::procnode {

bool Ipv4Cidr::Contains(uint32_t address) const {
  const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (address & mask) == network;
}

std::string Ipv4Cidr::ToString() const {
  return FormatIpv4(network) + "/" + std::to_string(prefix);
}

Result<uint32_t> ParseIpv4(const std::string& text) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) {
    return InvalidArgument("not an IPv4 address: '" + text + "'");
  }
  return ntohl(addr.s_addr);
}

std::string FormatIpv4(uint32_t address) {
  return fmt::format("{}.{}.{}.{}", address >> 24, (address >> 16) & 0xff, (address >> 8) & 0xff,
                     address & 0xff);
}

Result<Ipv4Cidr> ParseCidr(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return InvalidArgument("CIDR needs a /prefix: '" + text + "'");
  ASSIGN_OR_RETURN(uint32_t address, ParseIpv4(text.substr(0, slash)));
  int prefix = 0;
  const std::string p = text.substr(slash + 1);
  if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("bad prefix in '" + text + "'");
  }
  prefix = std::stoi(p);
  if (prefix < 8 || prefix > 24) {
    return InvalidArgument("pod CIDR prefix must be /8../24, got '" + text + "'");
  }
  Ipv4Cidr cidr;
  cidr.prefix = prefix;
  cidr.network = address & (~uint32_t{0} << (32 - prefix));
  if (cidr.network != address) {
    return InvalidArgument("'" + text + "' has host bits set; use " + cidr.ToString());
  }
  return cidr;
}

IpAllocator::IpAllocator(Ipv4Cidr cidr) : cidr_(cidr), next_(cidr.network + 256 + 1) {}

bool IpAllocator::Usable(uint32_t address) const {
  const uint32_t offset = address - cidr_.network;
  const uint32_t last = address & 0xff;
  return cidr_.Contains(address) && offset >= 256 && last != 0 && last != 255;
}

Result<uint32_t> IpAllocator::Allocate(const std::string& key) {
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  const uint32_t candidates = cidr_.size();
  for (uint32_t i = 0; i < candidates; ++i) {
    uint32_t address = next_;
    next_ = cidr_.Contains(next_ + 1) ? next_ + 1 : cidr_.network;
    if (!Usable(address) || used_.count(address)) continue;
    used_.insert(address);
    by_key_[key] = address;
    return address;
  }
  return ResourceExhausted("no free pod address left in " + cidr_.ToString());
}

void IpAllocator::Release(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  used_.erase(it->second);
  by_key_.erase(it);
}

namespace {

Status WriteProcFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return Internal("cannot write " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

// Runs `ip ARGS...` and fails with its exit status.
Status RunIp(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execvp("ip", cargv.data());
    execv("/usr/sbin/ip", cargv.data());
    execv("/sbin/ip", cargv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    return Internal(fmt::format("'{}' failed (status {}); is iproute2 installed?", cmd, status));
  }
  return Status::Ok();
}

}  // namespace

Status EnterPrivateNetwork(const Ipv4Cidr& cidr) {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (uid == 0) {
    if (unshare(CLONE_NEWNET) != 0) {
      return FailedPrecondition(std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno));
    }
  } else {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
      return FailedPrecondition(std::string("unshare(CLONE_NEWUSER|CLONE_NEWNET): ") +
                                std::strerror(errno) +
                                " (unprivileged user namespaces must be enabled: sysctl "
                                "kernel.unprivileged_userns_clone=1)");
    }
    RETURN_IF_ERROR(WriteProcFile("/proc/self/setgroups", "deny"));
    RETURN_IF_ERROR(WriteProcFile("/proc/self/uid_map", fmt::format("0 {} 1\n", uid)));
    RETURN_IF_ERROR(WriteProcFile("/proc/self/gid_map", fmt::format("0 {} 1\n", gid)));
  }
  RETURN_IF_ERROR(RunIp({"link", "set", "lo", "up"}));
  RETURN_IF_ERROR(RunIp({"route", "add", "local", cidr.ToString(), "dev", "lo", "table", "local"}));
  return CheckBindable(cidr.network + 1);
}

Status CheckBindable(uint32_t address) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(address);
  sa.sin_port = 0;
  const int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  const int err = errno;
  close(fd);
  if (rc != 0) {
    return FailedPrecondition(fmt::format(
        "cannot bind {} ({}): the pod range is not local here; run inside a pod network "
        "(e2e/procnode/netns.sh) or pick --pod-cidr",
        FormatIpv4(address), std::strerror(err)));
  }
  return Status::Ok();
}

}  // namespace sluice::procnode
