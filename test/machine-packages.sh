#!/bin/sh
# The Debian packages the test suite runs for real: PostgreSQL 15 (servers, psql, contrib's dblink),
# promtool (Prometheus's metrics lint), etcd and etcdctl (the etcd compatibility suite runs against
# both), Patroni, and a Docker engine with debootstrap (the chaos runs' containers). `npm test` runs
# this first: it installs what is missing when run as root, and otherwise names what to install.
# Nothing is skipped silently: a test whose program is missing fails and says which.
set -u
need=""
[ -x /usr/lib/postgresql/15/bin/postgres ] || need="$need postgresql-15"
command -v psql >/dev/null 2>&1 || need="$need postgresql-client-15"
command -v promtool >/dev/null 2>&1 || need="$need prometheus"
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
command -v etcdctl >/dev/null 2>&1 || need="$need etcd-client"
command -v patroni >/dev/null 2>&1 || need="$need patroni"
command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "pgraft tests: missing Debian packages:$need; install them (as root: apt-get install$need) or the tests that use them fail" >&2
  exit 0
fi
echo "pgraft tests: installing Debian packages:$need" >&2
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2 \
  || echo "pgraft tests: apt-get install$need failed; the tests that need them will fail and say so" >&2
# The packages start their own services where they can; the tests start their own servers.
for service in etcd prometheus prometheus-node-exporter patroni postgresql; do
  (systemctl stop "$service" || service "$service" stop) >/dev/null 2>&1 || true
done
exit 0
