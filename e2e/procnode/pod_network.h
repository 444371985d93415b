#pragma once

// Pod addresses for sluice-procnode: an IPv4 range whose addresses are local to this machine (a
// private network namespace routes the whole range to `lo`), one address per pod.
//
// kube-apiserver refuses loopback (127/8) and link-local addresses in Endpoints and
// EndpointSlices, so pods cannot use 127.0.X.Y; an ordinary private range made local is the
// closest thing that Services, the router and Prometheus can all see.

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "lib/base/status.h"

namespace sluice::procnode {

struct Ipv4Cidr {
  uint32_t network = 0;  // host byte order, host bits cleared
  int prefix = 0;

  uint32_t size() const { return prefix == 0 ? 0 : (uint32_t{1} << (32 - prefix)); }
  bool Contains(uint32_t address) const;
  std::string ToString() const;
};

// "10.244.0.0/16". The prefix must be between 8 and 24 so that the range has room for the node
// address and at least one /24 of pods.
Result<Ipv4Cidr> ParseCidr(const std::string& text);
Result<uint32_t> ParseIpv4(const std::string& text);
std::string FormatIpv4(uint32_t address);

// Hands out pod addresses from a range: the node takes <network>.0.1 (the first /24 is never given
// to pods), pods get addresses whose last octet is 1..254 from the second /24 on.
// Allocation is keyed (by pod uid) and idempotent: the same key gets the same address until it is
// released. Released addresses are reused last (allocation goes round the range), so a pod that
// just ended does not hand its address straight to a new pod while an EndpointSlice or a router
// may still name it. Not thread-safe; the owner locks.
class IpAllocator {
 public:
  explicit IpAllocator(Ipv4Cidr cidr);

  uint32_t node_address() const { return cidr_.network + 1; }
  // ResourceExhausted when every address is taken.
  Result<uint32_t> Allocate(const std::string& key);
  // No-op for an unknown key.
  void Release(const std::string& key);
  size_t allocated() const { return by_key_.size(); }

 private:
  bool Usable(uint32_t address) const;

  const Ipv4Cidr cidr_;
  uint32_t next_;  // the next candidate, cycling through the range
  std::map<std::string, uint32_t> by_key_;
  std::set<uint32_t> used_;
};

// Moves this process into a new network namespace (with a user namespace when not root) in which
// `lo` is up and all of `cidr` is routed to it. Must be called while the process has one thread
// (first thing in main): a multi-threaded process cannot enter a new user namespace. Every
// child started afterwards shares the namespace; nothing outside it sees these addresses.
Status EnterPrivateNetwork(const Ipv4Cidr& cidr);

// Whether a TCP socket can bind `address` (port 0); the error says how to get a pod network.
Status CheckBindable(uint32_t address);

}  // namespace sluice::procnode
