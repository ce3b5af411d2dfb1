#!/usr/bin/env bash
# Packaging: `cmake --install` lays out the binaries, the systemd unit, the default config and the
# docs; `cpack` builds a .deb whose control data and files are right, whose binaries run from the
# extracted tree, and whose packaged config is one `sluice serve` accepts.
# Usage: deb_test.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: deb_test.sh BUILD_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A staged install, as a distribution builds one: prefix /usr, everything under DESTDIR.
DESTDIR="$work/stage" cmake --install "$build" --prefix /usr >/dev/null || fail "cmake --install"
for file in usr/bin/sluice usr/bin/sluice-sim usr/bin/sluice-check usr/lib/systemd/system/sluice.service \
            etc/sluice/sluice.yaml usr/share/doc/sluice/README.md usr/share/doc/sluice/sluice.example.yaml; do
  [ -e "$work/stage/$file" ] || fail "cmake --install did not lay out /$file"
done
"$work/stage/usr/bin/sluice" --version | grep -q '^sluice ' || fail "installed sluice --version"

(cd "$build" && cpack -G DEB -B "$work/deb" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/deb/sluice_*.deb)
dpkg-deb -I "$deb" >"$work/info" || fail "dpkg-deb -I"
grep -q '^ Package: sluice$' "$work/info" || fail "package name: $(cat "$work/info")"
grep -q '^ Depends:.*libboost-context' "$work/info" || fail "shared-library dependencies missing: $(cat "$work/info")"
grep -q 'adduser' "$work/info" || fail "adduser dependency missing"
dpkg-deb -e "$deb" "$work/control"
grep -qx '/etc/sluice/sluice.yaml' "$work/control/conffiles" || fail "the config is not a conffile"
[ -x "$work/control/postinst" ] || fail "no postinst"
dpkg-deb -x "$deb" "$work/root"
for file in usr/bin/sluice usr/lib/systemd/system/sluice.service etc/sluice/sluice.yaml; do
  [ -e "$work/root/$file" ] || fail "the .deb lacks /$file"
done
"$work/root/usr/bin/sluice" --version | grep -q '^sluice ' || fail "packaged sluice --version"
"$work/root/usr/bin/sluice" config print --config "$work/root/etc/sluice/sluice.yaml" >"$work/effective.yaml" \
  || fail "the packaged config is refused"
grep -q 'data_directory: "/var/lib/sluice/data"' "$work/effective.yaml" || fail "packaged data directory"
unit="$work/root/usr/lib/systemd/system/sluice.service"
grep -q '^ExecStart=/usr/bin/sluice serve --config /etc/sluice/sluice.yaml$' "$unit" || fail "unit ExecStart"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "unit ExecReload"
echo "PASS: install layout and .deb ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB)"
