#!/usr/bin/env bash
# Builds CPython 3.13 from Debian trixie's own source package (python3.13) into a prefix
# inside the project (.cpython/3.13 by default), for the native engine on machines whose
# system CPython has no per-interpreter GIL (Debian 12 ships 3.11).
#
# apt runs with a configuration private to this script (its own source list, lists, cache
# and state in a temporary directory), so the system's apt sources are never touched. The
# archive address is read from the system's own Debian source list, so no host name lives
# in the project. Skips when the prefix already holds a working python3.13 built with the
# current patches.
#
# Our own fixes to CPython (scripts/cpython-patches/*.patch, each saying what it fixes and
# the upstream issue) are applied on top of Debian's. The prefix records which ones it was
# built with (interpool-patches: their checksums), and a prefix built with another set is
# built again.
#
# Usage: scripts/build-cpython.sh [PREFIX]     (npm run build:cpython)
set -euo pipefail

project="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${1:-$project/.cpython/3.13}"
python="$prefix/bin/python3.13"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
build_deps=(libssl-dev libsqlite3-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev
  libreadline-dev libncurses-dev libgdbm-dev uuid-dev dpkg-dev)

work=""
fail() {
  echo "build:cpython: $*${work:+ (logs in $work)}" >&2
  exit 1
}

patches_dir="$project/scripts/cpython-patches"
patches_stamp="$prefix/interpool-patches"
wanted_patches="$(cd "$patches_dir" && sha256sum -- *.patch)"

# The modules whose absence means a build against missing -dev packages, not a usable one.
if [ -x "$python" ] && "$python" -c 'import ssl, sqlite3, ctypes, zlib, bz2, lzma, decimal, datetime' 2>/dev/null; then
  if [ "$(cat "$patches_stamp" 2>/dev/null)" = "$wanted_patches" ]; then
    echo "build:cpython: $python already works; nothing to do"
    exit 0
  fi
  echo "build:cpython: $python was built without the current scripts/cpython-patches; building it again"
fi

# The first Debian archive address of the system's own sources (deb822 .sources files, then
# one-line sources.list entries), skipping the security archive, which has no trixie suite
# under the same path.
find_archive() {
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' || true
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" || $1 == "deb-src" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' || true
  } | awk '!/-security/ && !found { print; found = 1 }'
}
archive="$(find_archive)"
[ -n "$archive" ] || fail "no Debian archive address found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources"
[ -r "$keyring" ] || fail "$keyring is missing (apt-get install debian-archive-keyring)"

missing=()
for package in "${build_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing build dependencies; run: apt-get install -y ${missing[*]}"
  echo "build:cpython: installing build dependencies: ${missing[*]}"
  apt-get install -y "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
fi

mkdir -p "$project/.cpython"
work="$(mktemp -d "$project/.cpython/build.XXXXXX")"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/state" "$work/src"
echo "deb-src [signed-by=$keyring] $archive trixie main" >"$work/apt/sources.list"
touch "$work/apt/state/status"
apt_options=(
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State=$work/apt/state"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::State::status=$work/apt/state/status"
  -o "Dir::Cache=$work/apt/cache"
  -o "APT::Sandbox::User=root"
)

echo "build:cpython: fetching python3.13 sources (trixie) from $archive"
apt-get "${apt_options[@]}" update >"$work/apt-update.log" 2>&1 ||
  fail "apt-get update for trixie sources failed: $(tail -n 1 "$work/apt-update.log")"
(cd "$work/src" && apt-get "${apt_options[@]}" source --download-only python3.13) >"$work/apt-source.log" 2>&1 ||
  fail "apt-get source python3.13 failed: $(tail -n 1 "$work/apt-source.log")"
dsc="$(ls "$work"/src/python3.13_*.dsc | head -n 1)"
(cd "$work/src" && dpkg-source -x "$dsc" cpython) >"$work/dpkg-source.log" 2>&1 ||
  fail "dpkg-source -x $dsc failed: $(tail -n 1 "$work/dpkg-source.log")"

cd "$work/src/cpython"
for patch_file in "$patches_dir"/*.patch; do
  patch -p1 --forward --silent <"$patch_file" >"$work/patch.log" 2>&1 ||
    fail "$(basename "$patch_file") does not apply to $(basename "$dsc" .dsc): $(head -n 1 "$work/patch.log")"
done

echo "build:cpython: building $(basename "$dsc" .dsc) with $(cd "$patches_dir" && echo *.patch) into $prefix (a few minutes)"
# The rpath lets bin/python3.13 find its libpython in the prefix. Given to make as well:
# Debian's configure does not carry LDFLAGS into the Makefile.
rpath="-Wl,-rpath,$prefix/lib"
./configure --enable-shared --prefix="$prefix" --without-ensurepip LDFLAGS="$rpath" \
  >"$work/configure.log" 2>&1 || fail "configure failed: $(tail -n 1 "$work/configure.log")"
make -j"$(nproc)" LDFLAGS="$rpath" >"$work/make.log" 2>&1 || fail "make failed: $(grep -m 1 -i 'error' "$work/make.log" || tail -n 1 "$work/make.log")"
make install LDFLAGS="$rpath" >"$work/install.log" 2>&1 || fail "make install failed: $(tail -n 1 "$work/install.log")"
"$python" -c 'import ssl, sqlite3, ctypes, zlib, bz2, lzma, decimal, datetime' ||
  fail "$python was built but cannot import its standard extension modules"
echo "$wanted_patches" >"$patches_stamp"
echo "build:cpython: $("$python" -c 'import sys; print(sys.version.split()[0])') installed in $prefix"
rm -rf "$work"
