#!/usr/bin/python3
"""The Containerfile's Debian packages against deploy/packages.txt, the one list.

Containers cannot be built where the tests run, so this checks what can go wrong without
one: a package the image needs that the project does not list, a build stage that drifts
from the packages the local build uses, a runtime stage that lacks a library the agent
links or carries more than it needs. The rules:

  1. Both stages start from Debian 12 (debian:12* or debian:bookworm*).
  2. Build stage: every package it installs is in deploy/packages.txt.
  3. Runtime stage: every package it installs is either
       a. the runtime library of a -dev package the build stage installs, i.e. a direct
          dependency of that -dev package (libuv1-dev depends on libuv1), or
       b. a non -dev package of deploy/packages.txt that the build stage does not install
          (tools such as curl for HEALTHCHECK, ca-certificates for TLS to the servers);
     so no compiler, header or test tool ends up in the image.
  4. Runtime stage, completeness: each shared library the built agent links directly
     (ELF NEEDED) comes from a package the runtime stage installs, unless it is part of
     every Debian image (an Essential package or what those depend on, such as libc6) or
     a sanitizer runtime of a debug build (libasan, libubsan: a release image has none).

Package facts come from the local dpkg database (the -dev packages are installed to build
here), so nothing is fetched. Usage: check_containerfile.py CONTAINERFILE PACKAGES_TXT AGENT
"""
import re
import subprocess
import sys

SANITIZER_RUNTIMES = re.compile(r"^lib(asan|ubsan|tsan|lsan)\d*$")


def fail(message):
    print(f"check_containerfile: {message}", file=sys.stderr)
    sys.exit(1)


def listed_packages(path):
    packages = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            name = line.split("#", 1)[0].strip()
            if name:
                packages.add(name)
    return packages


def stages(path):
    """[(base image, [packages])] per FROM, from its `apt-get install` commands."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)  # continuation lines joined
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0].upper() == "FROM":
            result.append((words[1], []))
        elif words[0].upper() == "RUN" and result:
            for command in re.split(r"&&|;|\|\|", line[3:]):
                tokens = command.split()
                if tokens[:2] == ["apt-get", "install"]:
                    result[-1][1].extend(t for t in tokens[2:] if not t.startswith("-"))
    return result


def dpkg_field(package, field):
    out = subprocess.run(["dpkg-query", "-W", "-f", "${" + field + "}", package],
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"dpkg-query knows no package {package}: is it installed? ({out.stderr.strip()})")
    return out.stdout


def direct_dependencies(package, fields=("Depends",)):
    names = set()
    for group in ",".join(dpkg_field(package, f) for f in fields).split(","):
        for alternative in group.split("|"):
            name = alternative.strip().split(" ")[0].split(":")[0]
            if name:
                names.add(name)
    return names


def base_image_packages():
    """The Essential packages installed here and everything they (pre-)depend on: what
    every Debian image, debian:12-slim included, already holds."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential}\n"],
                         capture_output=True, text=True, check=True).stdout
    todo = [line.split()[0] for line in out.splitlines() if line.endswith(" yes")]
    seen = set()
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        installed = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package],
                                   capture_output=True, text=True)
        if installed.returncode == 0 and installed.stdout.endswith(" installed"):
            todo.extend(direct_dependencies(package, ("Depends", "Pre-Depends")))
    return seen


def needed_packages(agent):
    """{soname: package} for the agent's direct shared-library dependencies."""
    out = subprocess.run(["readelf", "-d", agent], capture_output=True, text=True, check=True)
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    result = {}
    for soname in sonames:
        match = re.search(r"^\s*" + re.escape(soname) + r" \([^)]*x86-64[^)]*\) => (\S+)$",
                          cache, re.M) or \
            re.search(r"^\s*" + re.escape(soname) + r" \([^)]*\) => (\S+)$", cache, re.M)
        if not match:
            fail(f"the agent needs {soname}, which ldconfig does not know")
        path = match.group(1)
        # Debian 12 merged /lib into /usr/lib; dpkg knows each file under one of the two.
        candidates = [path, "/usr" + path] if not path.startswith("/usr/") else \
            [path, path[len("/usr"):]]
        for candidate in candidates:
            owner = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True,
                                   text=True)
            if owner.returncode == 0:
                result[soname] = owner.stdout.split(":")[0].strip()
                break
        else:
            fail(f"no Debian package owns {path} ({soname})")
    return result


def main():
    if len(sys.argv) != 4:
        fail("usage: check_containerfile.py CONTAINERFILE PACKAGES_TXT AGENT")
    containerfile, packages_txt, agent = sys.argv[1:]
    listed = listed_packages(packages_txt)
    found = stages(containerfile)
    if len(found) != 2:
        fail(f"expected two stages (build, runtime), found {len(found)}")
    (build_base, build), (runtime_base, runtime) = found
    for base in (build_base, runtime_base):
        if not re.match(r"^(docker\.io/(library/)?)?debian:(12|bookworm)", base):
            fail(f"stage FROM {base}: not Debian 12")
    if not build or not runtime:
        fail("a stage installs no packages: the parser found no `apt-get install`")

    errors = []
    for package in build:
        if package not in listed:
            errors.append(f"build stage installs {package}, which deploy/packages.txt does not list")

    libraries_of = {}
    for package in build:
        if package.endswith("-dev"):
            for dependency in direct_dependencies(package):
                libraries_of.setdefault(dependency, package)
    for package in runtime:
        if package in libraries_of:
            continue
        if package in listed and not package.endswith("-dev") and package not in build:
            continue
        errors.append(f"runtime stage installs {package}: neither the runtime library of a "
                      "build stage -dev package nor a runtime tool of deploy/packages.txt")

    base = base_image_packages()
    for soname, package in sorted(needed_packages(agent).items()):
        if package in runtime or package in base or SANITIZER_RUNTIMES.match(package):
            continue
        errors.append(f"the agent links {soname} ({package}), which the runtime stage does not install")

    if errors:
        fail("\n  ".join(["the Containerfile and deploy/packages.txt disagree:"] + errors))
    print(f"Containerfile: {len(build)} build packages, {len(runtime)} runtime packages, "
          "all consistent with deploy/packages.txt and the agent's libraries")


if __name__ == "__main__":
    main()
