#!/usr/bin/env python3
"""Fails when an include or a link crosses the layers DESIGN.md sets out.

Includes (every project header is included by its path from the repository root):
  lib/          includes only lib/
  controllers/  includes lib/ and controllers/
  dataplane/    includes lib/ and dataplane/ (never controllers/ or operator/)
  operator/     includes lib/, controllers/ and operator/
  dataplane/router/ includes nothing from dataplane/server/ or dataplane/runtime/
Links (read from the build tree's ninja file):
  sluice-router links neither the server core nor the rollout engine;
  sluice-server links nothing from controllers/ or the controller framework;
  only the binaries link the version library (lib/base/version.h), so a new commit relinks them
  and nothing else.

usage: check_layers.py SOURCE_DIR [BUILD_DIR]
"""
import os
import re
import sys

ALLOWED = {
    "lib": ("lib/",),
    "controllers": ("lib/", "controllers/"),
    "dataplane": ("lib/", "dataplane/"),
    "operator": ("lib/", "controllers/", "operator/"),
}
# Narrower rules inside a layer: (folder, forbidden include prefixes).
FORBIDDEN = [
    ("dataplane/router/", ("dataplane/server/", "dataplane/runtime/")),
]
# Binaries and the static libraries they must not link.
LINKS = {
    "sluice-router": ("libsluice_server_core.a", "libsluice_controllers_core.a",
                      "libsluice_runtime.a", "libsluice_controller.a"),
    "sluice-server": ("libsluice_controllers_core.a", "libsluice_controller.a",
                      "libsluice_modeldeployment.a"),
}
# The library whose generated source changes with every commit, and the programs that may link it.
VERSION_LIB = "libsluice_version.a"
VERSION_LINKERS = ("sluice-operator", "sluice-server", "sluice-router", "sluice-load",
                   "sluice-materialize", "kubectl-sluice")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def check_includes(src):
    problems = []
    for layer, allowed in ALLOWED.items():
        for root, _, files in os.walk(os.path.join(src, layer)):
            for name in files:
                if not name.endswith((".h", ".cpp", ".cc")):
                    continue
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                for inc in INCLUDE.findall(text):
                    if not inc.startswith(allowed):
                        problems.append(f"{rel}: includes \"{inc}\"; {layer}/ may include only "
                                        + ", ".join(allowed))
                    for folder, forbidden in FORBIDDEN:
                        if rel.startswith(folder) and inc.startswith(forbidden):
                            problems.append(f"{rel}: includes \"{inc}\"; {folder} must not include "
                                            + ", ".join(forbidden))
    return problems


def check_links(build):
    ninja = os.path.join(build, "build.ninja")
    if not os.path.exists(ninja):
        return [f"{ninja}: not found (configure with Ninja to check links)"]
    with open(ninja, encoding="utf-8") as f:
        text = f.read()
    problems = []
    for binary, forbidden in LINKS.items():
        # "build <dir>/<binary>: CXX_EXECUTABLE_LINKER__... objects | deps" and its LINK_LIBRARIES line.
        m = re.search(r"^build [^\n]*\b" + re.escape(binary) + r": CXX_EXECUTABLE_LINKER[^\n]*\n"
                      r"((?:  [^\n]*\n)*)", text, re.M)
        if not m:
            problems.append(f"{binary}: no link step in {ninja}")
            continue
        block = m.group(0)
        for lib in forbidden:
            if lib in block:
                problems.append(f"{binary} links {lib}")
    for m in re.finditer(r"^build ([^:\n]+): CXX_EXECUTABLE_LINKER[^\n]*\n", text, re.M):
        program = os.path.basename(m.group(1))
        if VERSION_LIB in m.group(0) and program not in VERSION_LINKERS:
            problems.append(f"{program} links {VERSION_LIB}; only "
                            + ", ".join(VERSION_LINKERS) + " may")
    return problems


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check_includes(sys.argv[1])
    if len(sys.argv) > 2:
        problems += check_links(sys.argv[2])
    for p in problems:
        print("layering:", p)
    if problems:
        print(f"layering: {len(problems)} violation(s)")
        return 1
    print("layering: includes and links follow the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
