// main() for test binaries whose pods are local processes: before anything else (while the
// process has one thread), enter a private network namespace in which the pod range is local.
// Linked as a source file, so it takes the place of gtest_main.

#include <gtest/gtest.h>

#include <cstdio>

#include "e2e/procnode/pod_network.h"

int main(int argc, char** argv) {
  // 10.244.0.0/16 for the cluster's proc node, the rest for extra nodes a test may start.
  auto cidr = sluice::procnode::ParseCidr("10.244.0.0/14");
  sluice::Status s = cidr.ok() ? sluice::procnode::EnterPrivateNetwork(*cidr) : cidr.status();
  if (!s.ok()) {
    std::fprintf(stderr, "cannot set up the pod network: %s\n", s.ToString().c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
