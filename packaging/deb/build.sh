#!/usr/bin/env bash
# make deb: ws4redis_<version>_<arch>.deb into OUT, from the release build (no Swift build here).
#   /usr/bin/ws4redis, /usr/bin/ws4redis-host, /usr/lib/<triplet>/libws4redis.so.<ABI major> (+ the
#   .so link, pkgconfig/ws4redis.pc), /usr/include/ws4redis.h, the systemd unit (as user ws4redis,
#   settings from the conffile /etc/default/ws4redis), /usr/lib/sysctl.d/60-ws4redis.conf, and
#   nginx-conf/ under /usr/share/doc/ws4redis/nginx. Depends: from dpkg-shlibdeps.
# Usage: build.sh BUILD_DIR OUT PATCHELF
set -euo pipefail
build_dir=$1 out=$2 patchelf=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/packaging/deb
header_define() { sed -n "s/^#define $1 \"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$repo/include/ws4redis.h"; }
version=$(header_define WS4R_VERSION_STRING)
abi=$(header_define WS4R_ABI_VERSION)
soname=libws4redis.so.$abi
[ "$(readelf -d "$build_dir/libws4redis.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" = "$soname" ] ||
    { echo "$build_dir/libws4redis.so: its soname is not $soname (WS4R_ABI_VERSION)" >&2; exit 1; }
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
debversion=$version-1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps reads debian/control and takes debian/<package>/DEBIAN/shlibs as this package's own.
root=$work/debian/ws4redis
lib=$root/usr/lib/$triplet
doc=$root/usr/share/doc/ws4redis
umask 022
install -d "$root/DEBIAN" "$root/usr/bin" "$lib/pkgconfig" "$root/usr/include" "$root/lib/systemd/system" \
    "$root/etc/default" "$root/usr/lib/sysctl.d" "$doc" "$root/usr/share/lintian/overrides"

strip --remove-section=.comment -o "$root/usr/bin/ws4redis" "$build_dir/ws4redis-cli"
# The build's RUNPATH ($ORIGIN/../lib) is for make install's layout; here the library is in the
# loader's own directory.
strip --remove-section=.comment -o "$root/usr/bin/ws4redis-host" "$build_dir/ws4redis-host"
"$patchelf" --remove-rpath "$root/usr/bin/ws4redis-host"
chmod 755 "$root/usr/bin/ws4redis" "$root/usr/bin/ws4redis-host"
strip --strip-unneeded --remove-section=.comment -o "$lib/$soname" "$build_dir/libws4redis.so"
chmod 644 "$lib/$soname"
ln -s "$soname" "$lib/libws4redis.so"
install -m 644 "$repo/include/ws4redis.h" "$root/usr/include/"
sed -e 's|@PREFIX@|/usr|' -e "s|@LIBDIR@|\${prefix}/lib/$triplet|" -e "s|@VERSION@|$version|" "$repo/ws4redis.pc.in" > "$lib/pkgconfig/ws4redis.pc"
chmod 644 "$lib/pkgconfig/ws4redis.pc"

{ cat "$here/unit-header"; sed -n '/^\[Unit\]/,$p' "$repo/packaging/systemd/ws4redis.service" |
    sed -e 's|^EnvironmentFile=.*|EnvironmentFile=/etc/default/ws4redis|' -e 's|/usr/local/bin/ws4redis|/usr/bin/ws4redis|' \
        -e 's|^DynamicUser=yes$|&\n# The system user of the package (created on install) rather than a dynamic one: files it\n# writes keep their owner.\nUser=ws4redis\nGroup=ws4redis|'; } > "$root/lib/systemd/system/ws4redis.service"
chmod 644 "$root/lib/systemd/system/ws4redis.service"
grep -q '^User=ws4redis$' "$root/lib/systemd/system/ws4redis.service" || { echo "the unit has no DynamicUser=yes line to add User= to" >&2; exit 1; }
install -m 640 "$repo/packaging/systemd/ws4redis.env" "$root/etc/default/ws4redis"
install -m 644 "$repo/packaging/sysctl.d/60-ws4redis.conf" "$root/usr/lib/sysctl.d/"
cp -r "$repo/nginx-conf" "$doc/nginx"
find "$doc/nginx" -type d -exec chmod 755 {} + && find "$doc/nginx" -type f -exec chmod 644 {} +
install -m 644 "$here/copyright" "$doc/"
printf 'ws4redis (%s) unstable; urgency=medium\n\n  * Built from the ws4redis repository (see its git log).\n\n -- %s  %s\n' \
    "$debversion" "$(sed -n 's/^Maintainer: //p' "$here/maintainer")" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}")" |
    gzip -9n > "$doc/changelog.Debian.gz"
install -m 644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/ws4redis"

install -m 755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"
install -m 644 "$here/triggers" "$root/DEBIAN/"
echo /etc/default/ws4redis > "$root/DEBIAN/conffiles"
sed -e "s/@ABI_MAJOR@/$abi/" -e "s/@VERSION@/$version/" "$here/shlibs.in" > "$root/DEBIAN/shlibs"
chmod 644 "$root/DEBIAN/conffiles" "$root/DEBIAN/shlibs"

printf 'Source: ws4redis\n\nPackage: ws4redis\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -xws4redis -ldebian/ws4redis/usr/lib/"$triplet" -edebian/ws4redis/usr/bin/ws4redis \
              -edebian/ws4redis/usr/bin/ws4redis-host -edebian/ws4redis/usr/lib/"$triplet/$soname" |
          sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "dpkg-shlibdeps computed no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    -e "s/@MAINTAINER@/$(sed -n 's/^Maintainer: //p' "$here/maintainer")/" "$here/control.in" > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

mkdir -p "$out"
rm -f "$out"/ws4redis_*.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/ws4redis_${debversion}_$arch.deb"
ls -l "$out/ws4redis_${debversion}_$arch.deb"
