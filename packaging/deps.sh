#!/bin/sh
# Installs the Debian packages dvrfs needs to build, test, bench and demo,
# when any is missing. Needs root (apt-get) only if something is missing.
set -eu
pkgs="build-essential pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
libssl-dev check libsqlite3-dev libmicrohttpd-dev libjansson-dev nginx
ffmpeg curl groff-base psmisc procps python3 git prometheus chromium"
[ "${1:-}" = "--bench" ] && pkgs="$pkgs wrk rsync rclone httpdirfs"
# make fuzz: clang with libFuzzer and the sanitizer runtimes.
[ "${1:-}" = "--fuzz" ] && pkgs="$pkgs clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing (run 'make deps' as root)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
