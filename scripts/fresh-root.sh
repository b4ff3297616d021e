#!/usr/bin/env bash
# fresh-root.sh: checks that the README's set-up works on a fresh Debian 12 (bookworm)
# machine. It makes a bare Debian root with debootstrap (variant minbase, like the debian:12
# container image), clones the repository's current HEAD into it (commit first: uncommitted
# changes are not copied) and runs there, in a chroot, as root with no stdin:
#   scripts/install-deps.sh --test
#   scripts/build.sh                                   (the build of scripts/run.sh)
#   the ASan/UBSan build and the libFuzzer build       (the builds scripts/test.sh makes)
#   QUICK=1 scripts/test.sh                            (FRESH_TEST= to choose, "" for none)
# It needs root (it mounts /proc, /sys, /dev, /dev/pts and /dev/shm in the root, all
# unmounted on exit; /tmp stays on disk, as on a Debian 12 machine) and the network: the
# Debian mirror the machine's apt uses (MIRROR= to choose another) and the npm registry
# (`npm ci`). What the machine itself needs to reach them goes in too: /etc/resolv.conf,
# the http(s)_proxy variables and its own CA certificates (/usr/local/share/ca-certificates,
# e.g. those of a TLS-inspecting proxy).
#
# The bare debootstrap root is cached as a tarball in $FRESH_CACHE (default
# /var/cache/rtd-fresh-root); every run unpacks it into a new folder under $FRESH_WORK
# (default /var/tmp), so install-deps always starts from a pristine root. The folder is
# removed at the end unless FRESH_KEEP=1. Delete the tarball to debootstrap again.
# On a 2-core machine a run took 2 min 32 s (debootstrap and caching 33 s, install-deps
# 51 s, the three builds 20 s, QUICK=1 test.sh 45 s), 2 min 20 s with the cached root
# (4 s to unpack it; install-deps's downloads vary more than that), and 5 min 14 s with
# the whole test command (FUZZ_SECONDS=2) instead of QUICK=1.
#
#   sudo scripts/fresh-root.sh                 # the check .ci/run makes after scripts/test.sh
#   sudo env FRESH_TEST='FUZZ_SECONDS=2 scripts/test.sh' scripts/fresh-root.sh   # everything
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
g() { git -c safe.directory='*' -C "$top" "$@"; }   # also when run with sudo on a user's clone
suite=bookworm
cache=${FRESH_CACHE:-/var/cache/rtd-fresh-root}
tarball=$cache/$suite-minbase-$(dpkg --print-architecture 2>/dev/null || echo amd64).tar.gz
test_cmd=${FRESH_TEST-QUICK=1 scripts/test.sh}

say() { printf '\n==== fresh-root: %s (%ss)\n' "$*" "$SECONDS"; }
[ "$(id -u)" -eq 0 ] || { echo "fresh-root: run as root (it uses debootstrap, mount and chroot)" >&2; exit 2; }

# The mirror the machine's apt uses (deb822 .sources or a one-line sources.list), unless
# MIRROR is set.
mirror_of() { # $1: the archive's last path component, "debian" or "debian-security"
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    grep -hoE "(https?://[^ ]+/$1)/?( |\$)" "$f" 2>/dev/null | head -n 1 | tr -d ' ' | sed 's,/$,,'
  done | head -n 1
}
mirror=${MIRROR:-$(mirror_of debian)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${SECURITY_MIRROR:-$(mirror_of debian-security)}
security=${security:-${mirror%/debian}/debian-security}

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends debootstrap debian-archive-keyring </dev/null
fi

work=$(mktemp -d "${FRESH_WORK:-/var/tmp}/rtd-fresh-root.XXXXXX")
root=$work/root
mounted=()
cleanup() {
  local rc=$? i p
  # Processes left running in the root (a daemon a package's postinst started, a test's
  # child), found by their root directory, so that the file systems can be unmounted.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true
  done
  if [ "${FRESH_KEEP:-0}" = 1 ]; then
    echo "fresh-root: kept $root" >&2
  elif ! grep -q " $work/" /proc/mounts; then
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root"
if [ -f "$tarball" ]; then
  say "unpacking the cached bare root $tarball"
  tar -C "$root" -xzpf "$tarball"
else
  say "debootstrap $suite from $mirror"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" "$root/debootstrap/debootstrap.log" 2>/dev/null
    exit 1
  }
  # What a Debian 12 machine's apt has: the point releases and the security updates.
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF
  # A package's postinst must not start its daemon (nginx) in the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  mkdir -p "$cache"
  tar -C "$root" -czpf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  say "cached the bare root as $tarball ($(du -h "$tarball" | cut -f1))"
fi

cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
head=$(g rev-parse HEAD)
say "cloning ${head:0:12} into the root"
[ -z "$(g status --porcelain --untracked-files=no)" ] ||
  echo "fresh-root: warning: uncommitted changes are not copied, the check is of HEAD" >&2
g clone -q --no-hardlinks "$top" "$root/root/rtd"
git -C "$root/root/rtd" checkout -q --detach "$head"

mnt() { # type source target [options]
  mkdir -p "$3"
  mount ${4:+-o "$4"} -t "$1" "$2" "$3"
  mounted+=("$3")
}
mnt proc proc "$root/proc"
mnt sysfs sysfs "$root/sys" ro
mount --bind /dev "$root/dev" && mounted+=("$root/dev")
mount --bind /dev/pts "$root/dev/pts" && mounted+=("$root/dev/pts")
mnt tmpfs shm "$root/dev/shm" mode=1777   # Chromium's shared memory

proxy=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -z "${!v:-}" ] || proxy+=("$v=${!v}")
done
run() { # one step in the chroot, as root, with a clean environment and no stdin
  say "$*"
  env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb "${proxy[@]}" chroot "$root" /bin/bash -c "cd /root/rtd && $*" </dev/null
}
# apt's and dpkg's output goes to a log, shown if the step fails
run scripts/install-deps.sh --test '>/root/install-deps.log 2>&1' || {
  tail -n 80 "$root/root/install-deps.log"
  exit 1
}
run scripts/build.sh
run BUILD_DIR=build-asan scripts/build.sh --enable-sanitizers '>/dev/null'
run BUILD_DIR=build-fuzz scripts/build.sh CC=clang CXX=clang++ --enable-fuzzing --disable-werror '>/dev/null'
run build-asan/rtd/rtd --version
run 'n=0; for f in build-fuzz/tests/fuzz/fuzz_*; do [ -f "$f" ] && [ -x "$f" ] || continue; n=$((n + 1))
  "$f" -runs=1 >/dev/null 2>&1 || { echo "$f does not run"; exit 1; }; done; echo "$n fuzz targets run"; [ "$n" -gt 0 ]'
[ -z "$test_cmd" ] || run "$test_cmd"
say "a fresh $suite root installs, builds and tests"
