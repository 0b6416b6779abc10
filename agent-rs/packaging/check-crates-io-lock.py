#!/usr/bin/env python3
"""Check packaging/crates-io.lock, the public-registry lock file, against the Debian build.

Cargo.lock pins the crate versions the agent is built and tested with here, from Debian's
packaged crate sources. packaging/crates-io.lock pins the same versions for builds against
crates.io (the Homebrew formula, a Fedora/RHEL packager with `cargo vendor`), with the
registry's checksums and the crates Debian leaves out because they serve other platforms only
(security-framework on macOS, schannel on Windows). This script checks, offline:

  1. every package of Cargo.lock is in crates-io.lock at the same version, with the same
     dependencies, except the dependencies Debian's packaging removed (listed below);
  2. the only extra packages are those platform crates, and every package is reachable from
     medic-agent (nothing stale);
  3. every checksum is a sha256 and none is one of Debian's placeholders;
  4. where Debian's package records the registry checksum (.cargo-checksum.json "package"), it
     is the one in crates-io.lock.

    python3 packaging/check-crates-io-lock.py [--registry /usr/share/cargo/registry]

Exit status 0 when everything holds; 1 with the problems listed otherwise.
"""

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "registry+https://github.com/rust-lang/crates.io-index"
# sha256("0") and the text cargo writes when a directory source gives no checksum: what Debian's
# packages and a lock resolved against them carry instead of the registry's checksum.
PLACEHOLDERS = {
    "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9",
    "Could not get crate checksum",
}
# Dependencies Debian's packaging drops from a crate's Cargo.toml because they build on other
# platforms only, and the packages they bring in.
REMOVED_BY_DEBIAN = {
    "rustls-native-certs": {"schannel", "security-framework"},
}
PLATFORM_ONLY = {
    "bitflags",  # security-framework (macOS)
    "core-foundation",  # security-framework (macOS)
    "core-foundation-sys",  # security-framework (macOS)
    "security-framework",  # rustls-native-certs, cfg(target_os = "macos")
    "security-framework-sys",  # security-framework (macOS)
    "schannel",  # rustls-native-certs, cfg(windows)
    "lazy_static",  # schannel (Windows)
    "windows-sys",  # schannel (Windows)
    "windows_aarch64_msvc",
    "windows_i686_gnu",
    "windows_i686_msvc",
    "windows_x86_64_gnu",
    "windows_x86_64_msvc",
}


def load(path):
    with open(path, "rb") as f:
        data = tomllib.load(f)
    packages = {}
    for p in data["package"]:
        packages[p["name"]] = p
    return data, packages


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", default="/usr/share/cargo/registry")
    args = parser.parse_args()

    problems = []
    debian_data, debian = load(ROOT / "Cargo.lock")
    public_data, public = load(ROOT / "packaging" / "crates-io.lock")
    if public_data.get("version") != debian_data.get("version"):
        problems.append("lock file format versions differ")
    if len(public) != len(public_data["package"]):
        problems.append("crates-io.lock holds two versions of one crate (not expected here)")

    for name, p in debian.items():
        q = public.get(name)
        if q is None:
            problems.append(f"{name} {p['version']}: missing from crates-io.lock")
            continue
        if q["version"] != p["version"]:
            problems.append(f"{name}: {q['version']} in crates-io.lock, {p['version']} in Cargo.lock")
        want = set(p.get("dependencies", [])) | REMOVED_BY_DEBIAN.get(name, set())
        if set(q.get("dependencies", [])) != want:
            problems.append(f"{name}: dependencies {sorted(q.get('dependencies', []))}, expected {sorted(want)}")
        if ("source" in p) != ("source" in q):
            problems.append(f"{name}: source differs")

    extra = set(public) - set(debian)
    if extra != PLATFORM_ONLY:
        problems.append(
            f"extra packages {sorted(extra)}; expected exactly the platform crates {sorted(PLATFORM_ONLY)}"
        )

    # Reachability from the root package.
    seen, todo = set(), ["medic-agent"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dep in public.get(name, {}).get("dependencies", []):
            dep_name = dep.split(" ")[0]
            if dep_name not in public:
                problems.append(f"{name} depends on {dep_name}, which is not in crates-io.lock")
            todo.append(dep_name)
    for name in sorted(set(public) - seen):
        problems.append(f"{name} is not reachable from medic-agent")

    cross_checked = 0
    for name, q in public.items():
        if "source" not in q:
            continue
        if q["source"] != REGISTRY:
            problems.append(f"{name}: source {q['source']}")
        checksum = q.get("checksum", "")
        if checksum in PLACEHOLDERS or not re.fullmatch(r"[0-9a-f]{64}", checksum):
            problems.append(f"{name}: checksum {checksum!r} is not a registry checksum")
            continue
        meta = Path(args.registry) / f"{name}-{q['version']}" / ".cargo-checksum.json"
        if meta.is_file():
            package = json.loads(meta.read_text()).get("package", "")
            if package and package not in PLACEHOLDERS:
                cross_checked += 1
                if package != checksum:
                    problems.append(f"{name} {q['version']}: Debian records {package}, crates-io.lock has {checksum}")

    if not cross_checked:
        problems.append(f"no Debian crate sources under {args.registry} to compare checksums with (build.sh installs them)")
    if problems:
        for line in problems:
            print(f"crates-io.lock: {line}", file=sys.stderr)
        return 1
    print(
        f"crates-io.lock: {len(public)} packages ({len(extra)} for macOS/Windows only), "
        f"same versions and dependencies as Cargo.lock, {cross_checked} checksums equal to "
        "those Debian's packages record"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
