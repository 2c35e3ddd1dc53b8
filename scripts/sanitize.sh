#!/usr/bin/env bash
# make sanitize: builds the core (swiftc -sanitize) and the C host and C API test (the toolchain's
# clang -fsanitize, so both share one sanitizer runtime) with AddressSanitizer or ThreadSanitizer,
# then runs the C API test and the end-to-end suite against that build. Any sanitizer report fails
# the run: the servers exit non-zero (the suite checks every exit code) and the reports are kept in
# out/sanitize/<sanitizer>/reports/.
#
# usage: scripts/sanitize.sh address|thread
set -euo pipefail
sanitizer=${1:?usage: scripts/sanitize.sh address|thread}
case "$sanitizer" in address|thread) ;; *) echo "unknown sanitizer: $sanitizer" >&2; exit 2 ;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=$repo/out/sanitize/$sanitizer
scratch=$repo/.build-$sanitizer
toolchain=$(dirname "$(dirname "$(command -v swiftc)")")
clang="$toolchain/bin/clang"
c_link=()
if [ "$sanitizer" = thread ]; then
  # ThreadSanitizer's runtime intercepts libdispatch and needs to see the toolchain's shared one
  # (a static copy trips its allocator): the Swift runtime is linked dynamically for this build.
  export WS4R_DYNAMIC_STDLIB=1
  c_link=(-L"$toolchain/lib/swift/linux" -ldispatch -lBlocksRuntime -Wl,-rpath,"$toolchain/lib/swift/linux")
fi
swift_build=(swift build -c debug --sanitize="$sanitizer" --scratch-path "$scratch")

"${swift_build[@]}" --product ws4redis
"${swift_build[@]}" --product ws4redis-cli
bin=$("${swift_build[@]}" --show-bin-path)

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/include" "$out/reports"
cp "$bin/ws4redis-cli" "$out/bin/ws4redis"
cp "$bin/libws4redis.so" "$out/lib/"
# The host and the C API test are linked against the soname (libws4redis.so.<ABI major>).
ln -s libws4redis.so "$out/lib/$(readelf -d "$bin/libws4redis.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
cp include/ws4redis.h "$out/include/"
cflags=(-O1 -g -fsanitize="$sanitizer" -fno-omit-frame-pointer -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Iinclude)
# shellcheck disable=SC2046 # pkg-config prints several flags
"$clang" "${cflags[@]}" -Iplugin -Wa,-I"$repo" $(pkg-config --cflags libmicrohttpd) -o "$out/bin/ws4redis-host" host/*.c plugin/ws4r_plugin.c \
  -L"$out/lib" -lws4redis $(pkg-config --libs libmicrohttpd) -ldl -pthread -Wl,-rpath,"$out/lib" "${c_link[@]}"
"$clang" "${cflags[@]}" -o "$out/capi-test" Tests/capi/capi_test.c -L"$out/lib" -lws4redis -lhiredis -pthread -Wl,-rpath,"$out/lib" "${c_link[@]}"

export WS4R_SANITIZER=$sanitizer
export ASAN_OPTIONS="detect_leaks=1:log_path=$out/reports/asan"
export LSAN_OPTIONS="suppressions=$repo/Tests/sanitize/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="log_path=$out/reports/tsan:second_deadlock_stack=1"

status=0
./scripts/with-redis.sh "$out/capi-test" || status=1
# Tests that load the library into Python itself are left out: the sanitizer runtime lives in the
# executables built here (the C API test covers the in-process ABI instead).
WS4R_PREFIX=$out "$repo/.venv/bin/python" -m pytest -q -m "not soak and not in_process" --ignore=Tests/e2e/test_examples.py Tests/e2e || status=1

if compgen -G "$out/reports/*" >/dev/null; then
  echo "== $sanitizer reports (out/sanitize/$sanitizer/reports) =="
  head -n 60 "$out"/reports/*
  status=1
fi
[ "$status" = 0 ] && echo "sanitize ($sanitizer): C API test and end-to-end suite passed, no reports"
exit "$status"
