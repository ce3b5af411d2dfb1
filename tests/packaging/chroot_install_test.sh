#!/usr/bin/env bash
# The CPack .deb installs into a clean Debian 12 root and runs from it (issue 7): build the .deb,
# debootstrap a minbase bookworm root (or unpack a cached copy of one), `apt-get install ./sluice_*.deb`
# inside it (apt resolves Depends from the Debian mirror; postinst runs without systemd), then, in
# the chroot: `sluice --version`, `sluice config print` of the packaged config, the `sluice` user and
# the ownership of /var/lib/sluice, a broker started as the unit starts it (user sluice, the packaged
# config, a free port) that logs its listening line, answers Kafka requests and exits 0 on SIGTERM,
# and finally `dpkg -r` and `dpkg --purge`.
#
# Usage: chroot_install_test.sh BUILD_DIR
# Needs root (debootstrap, mount, chroot) and HTTP access to the Debian mirror; fails, never skips,
# without them. Environment:
#   SLUICE_DEBIAN_MIRROR      mirror (default http://deb.debian.org/debian)
#   SLUICE_CHROOT_CACHE       directory caching the bootstrapped root as a tarball (default
#                             /var/cache/sluice-test; "off" disables the cache)
#   SLUICE_CHROOT_CACHE_DAYS  rebuild a cached root older than this (default 7)
#   SLUICE_CHROOT_TMP         where the root is unpacked (default BUILD_DIR; not a nodev/noexec fs)
#
# Mounts (/proc, /dev) are made inside a private mount and PID namespace (unshare), so they are
# never visible outside it and vanish with it, even if this script is killed; the EXIT traps also
# kill the broker, unmount, and remove the root (rm --one-file-system).
# shellcheck disable=SC2016,SC2317  # dpkg-query formats; functions run from traps
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s; }
chroot_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------------------------------------
# Inside the namespace: mount, install, check. Arguments: WORK ROOT DEB VERSION MIRROR.
if [ "${1:-}" = --inside-namespace ]; then
  work=$2 root=$3 deb=$4 version=$5 mirror=$6
  mounted=()
  broker_pid=
  inside_cleanup() {
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
      kill -KILL "$broker_pid" 2>/dev/null || true
      wait "$broker_pid" 2>/dev/null || true
    fi
    local i
    for (( i = ${#mounted[@]} - 1; i >= 0; i-- )); do
      umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
    done
  }
  trap inside_cleanup EXIT
  in_root() { chroot "$root" /usr/bin/env -i PATH="$chroot_path" HOME=/root LC_ALL=C.UTF-8 \
                DEBIAN_FRONTEND=noninteractive "$@"; }
  t0=$(now)

  # /proc of this PID namespace, and the host's device nodes.
  mount -t proc proc "$root/proc" || fail "mount -t proc in the root (is this a container without CAP_SYS_ADMIN?)"
  mounted+=("$root/proc")
  mount --bind /dev "$root/dev" || fail "bind-mounting /dev into the root"
  mounted+=("$root/dev")
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" || fail "copying /etc/resolv.conf into the root"
  # No maintainer script may start a service in the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  [ ! -e "$root/run/systemd/system" ] || fail "the root looks like a running systemd (/run/systemd/system)"
  in_root sh -c 'echo ok >/dev/null' || fail "the root cannot run commands or write /dev/null"

  # apt-get install ./sluice_*.deb: apt fetches the Depends from the mirror; postinst runs.
  echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"  # a cached root may come from another mirror
  in_root apt-get update -q --error-on=any >"$work/apt-update.log" 2>&1 \
    || { tail -n 30 "$work/apt-update.log" >&2; fail "apt-get update in the root (network to the mirror?)"; }
  cp "$deb" "$root/tmp/" && chmod 644 "$root/tmp/$(basename "$deb")"
  in_root sh -c "cd /tmp && apt-get install -y -q --no-install-recommends ./$(basename "$deb")" \
    >"$work/apt-install.log" 2>&1 \
    || { tail -n 40 "$work/apt-install.log" >&2; fail "apt-get install ./$(basename "$deb") in the root"; }
  t_installed=$(now)
  status=$(in_root dpkg-query -W -f='${Status} ${Version}' sluice) || fail "dpkg does not know sluice after the install"
  [ "$status" = "install ok installed $version" ] || fail "package status after install: '$status'"
  echo "  installed: $status ($(grep -c '^Setting up' "$work/apt-install.log") packages set up, $(( t_installed - t0 ))s)"

  # The binary and the packaged config.
  upstream=$(sed -E 's/^[0-9]+://; s/-[^-]*$//' <<<"$version")  # no epoch, no Debian revision
  got=$(in_root sluice --version) || fail "sluice --version in the root exited $?"
  [ "$got" = "sluice $upstream" ] || fail "sluice --version printed '$got', expected 'sluice $upstream'"
  in_root sluice config print --config /etc/sluice/sluice.yaml >"$work/effective.yaml" 2>&1 \
    || { cat "$work/effective.yaml" >&2; fail "sluice config print --config /etc/sluice/sluice.yaml in the root"; }
  grep -q 'data_directory: "/var/lib/sluice/data"' "$work/effective.yaml" \
    || { cat "$work/effective.yaml" >&2; fail "config print: data directory is not /var/lib/sluice/data"; }

  # postinst: a system user and group, owning the state directory.
  passwd=$(in_root getent passwd sluice) || fail "postinst did not create the sluice user"
  IFS=: read -r _ _ uid _ _ home shell <<<"$passwd"
  [ "$uid" -lt 1000 ] || fail "the sluice user is not a system user: $passwd"
  [ "$home" = /var/lib/sluice ] || fail "the sluice user's home is '$home', not /var/lib/sluice"
  case "$shell" in */nologin|*/false) ;; *) fail "the sluice user has a login shell: $shell" ;; esac
  in_root getent group sluice >/dev/null || fail "postinst did not create the sluice group"
  owner=$(in_root stat -c %U:%G /var/lib/sluice) || fail "postinst did not create /var/lib/sluice"
  [ "$owner" = sluice:sluice ] || fail "/var/lib/sluice is owned by $owner, not sluice:sluice"
  # postinst enables the unit even without a running systemd (an image built in a chroot starts
  # sluice at boot), through deb-systemd-helper when the root has it.
  wants=/etc/systemd/system/multi-user.target.wants/sluice.service
  if [ -x "$root/usr/bin/deb-systemd-helper" ]; then
    [ -L "$root$wants" ] || fail "postinst did not enable sluice.service ($wants missing)"
    echo "  unit enabled: $wants"
  else
    echo "  (no deb-systemd-helper in the root: enablement not checked)"
  fi

  # The broker, started as the unit starts it (User=sluice, WorkingDirectory=/var/lib/sluice,
  # ExecStart=/usr/bin/sluice serve --config /etc/sluice/sluice.yaml), on free ports.
  extra=(--listen 127.0.0.1:0)
  if in_root sluice serve --help 2>/dev/null | grep -q -- '--admin-listen'; then
    extra+=(--admin-listen 127.0.0.1:0)
  fi
  # Not through in_root (a function would run in a subshell): $! must be the broker itself
  # (chroot, env, setpriv and sh all exec). The log exists before the forked child opens it.
  : >"$work/broker.log"
  chroot "$root" /usr/bin/env -i PATH="$chroot_path" LC_ALL=C.UTF-8 setpriv --reuid=sluice --regid=sluice --init-groups \
    sh -c 'cd /var/lib/sluice && HOME=/var/lib/sluice exec /usr/bin/sluice serve --config /etc/sluice/sluice.yaml "$@"' \
    sluice "${extra[@]}" >"$work/broker.log" 2>&1 &
  broker_pid=$!
  port=
  for _ in $(seq 1 300); do
    port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]* (advertised as' "$work/broker.log" | head -n 1 \
             | sed 's/.*:\([0-9]*\) .*/\1/') || true
    [ -n "$port" ] && break
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$work/broker.log" >&2; fail "the broker (sluice serve ${extra[*]}, as user sluice) did not log its listening line"; }
  echo "  broker: listening on 127.0.0.1:$port (${extra[*]}), as user sluice"
  if [ "${#extra[@]}" -gt 2 ]; then
    # The admin HTTP API: its listening line, then GET /v1/status/ready answers 200.
    admin_port=
    for _ in $(seq 1 100); do
      admin_port=$(grep -o 'admin API listening on 127\.0\.0\.1:[0-9]*' "$work/broker.log" | head -n 1 | sed 's/.*://') || true
      [ -n "$admin_port" ] && break
      sleep 0.1
    done
    [ -n "$admin_port" ] || { cat "$work/broker.log" >&2; fail "no 'admin API listening on 127.0.0.1:PORT' line (--admin-listen 127.0.0.1:0)"; }
    ready=
    for _ in $(seq 1 100); do
      ready=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET /v1/status/ready HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3 && head -n 1 <&3' _ "$admin_port" 2>/dev/null | tr -d '\r') || true
      case "$ready" in "HTTP/1."?" 200"*) break ;; esac
      sleep 0.1
    done
    case "$ready" in "HTTP/1."?" 200"*) ;; *) fail "GET /v1/status/ready on the admin API (127.0.0.1:$admin_port) answered '$ready'" ;; esac
    echo "  admin API: 127.0.0.1:$admin_port, GET /v1/status/ready: $ready"
  fi
  # --mount-proc: /proc shows this namespace's pids.
  broker_uids=$(awk '/^Uid:/ { print $2 ":" $3 }' "/proc/$broker_pid/status" 2>/dev/null) || true
  [ "$broker_uids" = "$uid:$uid" ] || fail "the broker runs as uid '$broker_uids' (real:effective), not sluice ($uid)"
  [ "$(readlink "/proc/$broker_pid/exe")" = "$root/usr/bin/sluice" ] \
    || fail "pid $broker_pid is $(readlink "/proc/$broker_pid/exe"), not the chroot's /usr/bin/sluice"

  # Kafka requests: the packaged admin CLI from the chroot, and a real client from the host.
  in_root sluice topic create chroot-check -p 2 --brokers "127.0.0.1:$port" >"$work/topic.log" 2>&1 \
    || { cat "$work/topic.log" "$work/broker.log" >&2; fail "sluice topic create against the chroot's broker"; }
  in_root sluice topic list --brokers "127.0.0.1:$port" >"$work/topics" 2>&1 \
    || { cat "$work/topics" >&2; fail "sluice topic list against the chroot's broker"; }
  grep -q 'chroot-check' "$work/topics" || { cat "$work/topics" >&2; fail "topic list does not show chroot-check"; }
  if command -v kcat >/dev/null; then
    printf 'one\ntwo\nthree\n' | timeout 30 kcat -b "127.0.0.1:$port" -P -t chroot-check -p 0 \
      || fail "kcat could not produce to the chroot's broker"
    got=$(timeout 30 kcat -b "127.0.0.1:$port" -C -t chroot-check -p 0 -o beginning -c 3 -e -q) \
      || fail "kcat could not consume from the chroot's broker"
    [ "$got" = $'one\ntwo\nthree' ] || fail "kcat consumed '$got', expected one two three"
    echo "  kafka: topic create/list from the chroot, 3 records produced and consumed with kcat"
  else
    echo "  kafka: topic create/list from the chroot (kcat not installed on the host: no produce/consume)"
  fi

  # SIGTERM: a clean stop, exit 0.
  kill -TERM "$broker_pid"
  rc=0
  for _ in $(seq 1 300); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$broker_pid" 2>/dev/null && { cat "$work/broker.log" >&2; fail "the broker did not exit within 30s of SIGTERM"; }
  wait "$broker_pid" || rc=$?
  broker_pid=
  [ "$rc" -eq 0 ] || { cat "$work/broker.log" >&2; fail "the broker exited $rc on SIGTERM"; }
  grep -q 'stopped' "$work/broker.log" || { cat "$work/broker.log" >&2; fail "no 'stopped' line after SIGTERM"; }
  owner=$(in_root stat -c %U:%G /var/lib/sluice/data) || fail "the broker did not create /var/lib/sluice/data"
  [ "$owner" = sluice:sluice ] || fail "/var/lib/sluice/data is owned by $owner, not sluice:sluice"
  echo "  broker: SIGTERM, exit 0; /var/lib/sluice{,/data} owned by sluice:sluice"

  # Remove (the conffile stays), then purge (it goes).
  in_root dpkg -r sluice >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log" >&2; fail "dpkg -r sluice"; }
  [ ! -e "$root/usr/bin/sluice" ] || fail "dpkg -r left /usr/bin/sluice"
  [ -e "$root/etc/sluice/sluice.yaml" ] || fail "dpkg -r removed the conffile /etc/sluice/sluice.yaml"
  status=$(in_root dpkg-query -W -f='${Status}' sluice 2>/dev/null) || true
  [ "$status" = "deinstall ok config-files" ] || fail "package status after dpkg -r: '$status'"
  in_root dpkg --purge sluice >"$work/dpkg-purge.log" 2>&1 || { cat "$work/dpkg-purge.log" >&2; fail "dpkg --purge sluice"; }
  [ ! -e "$root/etc/sluice/sluice.yaml" ] || fail "dpkg --purge left /etc/sluice/sluice.yaml"
  [ ! -e "$root$wants" ] && [ ! -L "$root$wants" ] || fail "dpkg --purge left the unit enabled ($wants)"
  status=$(in_root dpkg-query -W -f='${Status}' sluice 2>/dev/null) || true
  case "$status" in ""|"unknown ok not-installed"|"purge ok not-installed") ;;
    *) fail "package status after dpkg --purge: '$status'" ;; esac
  echo "  removed: dpkg -r kept the conffile, dpkg --purge removed it"
  echo "$(( t_installed - t0 )) $(( $(now) - t_installed ))" >"$work/inside-times"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# On the host.
build=${1:?usage: chroot_install_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)
started=$(now)
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, mount, chroot); CI runs as root"
for tool in debootstrap cpack dpkg-deb unshare chroot flock; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (ci/install-deps.sh installs debootstrap)"
done
mirror=${SLUICE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mirror_host=$(sed -E 's#^[a-z]+://([^/:]+).*#\1#' <<<"$mirror")
mirror_port=80
[[ "$mirror" != https://* ]] || mirror_port=443
cache=${SLUICE_CHROOT_CACHE:-/var/cache/sluice-test}
cache_days=${SLUICE_CHROOT_CACHE_DAYS:-7}
arch=$(dpkg --print-architecture)

work=$(mktemp -d "${SLUICE_CHROOT_TMP:-$build}/chroot-install.XXXXXX")
root="$work/root"
ns_pid=
tarball_tmp=
cleanup() {
  local rc=$?
  if [ -n "$ns_pid" ] && kill -0 "$ns_pid" 2>/dev/null; then
    # unshare blocks SIGTERM; SIGKILL it and --kill-child kills the namespace's init, which takes
    # every process of the namespace with it, and its mounts go with the last of them.
    kill -KILL "$ns_pid" 2>/dev/null || true
    wait "$ns_pid" 2>/dev/null || true
  fi
  # The mounts live in the namespace; should any be visible here, take them down first.
  local mnt
  while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v r="$root" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  if awk -v r="$root" 'index($5, r) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "FAIL: mounts remain under $root; not removing it" >&2
    exit 1
  fi
  rm -rf --one-file-system "$work"
  [ -z "$tarball_tmp" ] || rm -f "$tarball_tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The mirror must answer: say so plainly instead of letting debootstrap or apt time out.
timeout 20 bash -c "exec 3<>/dev/tcp/$mirror_host/$mirror_port" 2>/dev/null \
  || fail "network: cannot reach $mirror_host:$mirror_port (this test installs the .deb's dependencies from $mirror)"

# 1. The .deb, as deb_test.sh builds it.
(cd "$build" && cpack -G DEB -B "$work/deb" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack -G DEB in $build"; }
deb=$(ls "$work"/deb/sluice_*.deb) || fail "cpack made no sluice_*.deb"
version=$(dpkg-deb -f "$deb" Version)
t_deb=$(now)
echo "  .deb: $(basename "$deb") ($(( t_deb - started ))s)"

# 2. A clean bookworm root: from the cache if a trustworthy, recent one is there, else debootstrap
#    (and cache it before anything touches it).
tarball=
if [ "$cache" != off ]; then
  [ -d "$cache" ] || install -d -m 755 "$cache" || fail "cannot create the cache directory $cache"
  # Only a root-owned cache that nobody else can write is trusted (its contents run as root).
  if [ "$(stat -c %u "$cache")" != 0 ] || [ -n "$(find "$cache" -maxdepth 0 -perm /022)" ]; then
    fail "cache directory $cache is not root-owned or is writable by others; fix it or set SLUICE_CHROOT_CACHE=off"
  fi
  tarball="$cache/debian-bookworm-minbase-$arch.tar.gz"
  exec 9>"$cache/.lock"
  flock -w 600 9 || fail "another run has held $cache/.lock for 10 minutes"  # one run creates the tarball at a time
fi
how=cold
if [ -n "$tarball" ] && [ -f "$tarball" ] && [ -n "$(find "$tarball" -mtime "-$cache_days" -user 0 ! -perm /022)" ]; then
  mkdir "$root"
  if tar --numeric-owner -C "$root" -xpzf "$tarball" 2>"$work/untar.log" && [ -x "$root/usr/bin/apt-get" ]; then
    how="warm (cached root $tarball)"
  else
    echo "  cached root $tarball does not unpack: removing it and bootstrapping" >&2
    rm -f "$tarball"
    rm -rf --one-file-system "$root"
  fi
fi
if [ "$how" = cold ]; then
  # In a private mount namespace: debootstrap's own mounts (/proc, /sys in the root) cannot leak.
  unshare --mount --propagation private -- debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap --variant=minbase bookworm from $mirror (log above)"; }
  if [ -n "$tarball" ]; then
    rm -f "$root"/var/cache/apt/archives/*.deb
    tarball_tmp="$tarball.tmp.$$"  # written whole, then renamed: a reader never sees half of one
    if tar --numeric-owner -C "$root" -cpf - . | gzip -1 >"$tarball_tmp" && chmod 644 "$tarball_tmp" \
       && mv "$tarball_tmp" "$tarball"; then
      tarball_tmp=
    else
      rm -f "$tarball_tmp"
      tarball_tmp=
      echo "  note: could not cache the root in $tarball" >&2
    fi
  fi
  how="cold (debootstrap from $mirror${tarball:+, cached in $tarball})"
fi
[ -z "$tarball" ] || flock -u 9
t_root=$(now)
echo "  root: $how ($(( t_root - t_deb ))s)"

# 3-5. Mount, install and check inside a private mount + PID namespace.
unshare --mount --pid --fork --kill-child --mount-proc --propagation private -- \
  bash "$0" --inside-namespace "$work" "$root" "$deb" "$version" "$mirror" &
ns_pid=$!
rc=0
wait "$ns_pid" || rc=$?
ns_pid=
[ "$rc" -eq 0 ] || exit "$rc"
read -r t_install t_checks <"$work/inside-times"
echo "PASS: $(basename "$deb") installs into a clean Debian 12 root and runs from it;" \
     "total $(( $(now) - started ))s: .deb $(( t_deb - started ))s, root $(( t_root - t_deb ))s [${how%% *}]," \
     "apt install ${t_install}s, checks and removal ${t_checks}s"
