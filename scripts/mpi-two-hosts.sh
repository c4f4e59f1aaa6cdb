#!/bin/bash
# mpi-two-hosts.sh — a two-host data-parallel run without two machines (run as root;
# outside CI). Two network namespaces, nnc_h1 (10.99.0.1) and nnc_h2 (10.99.0.2), are
# joined by a veth pair; mpirun runs in nnc_h1 with a hostfile naming both addresses,
# Open MPI starts its daemon "on" 10.99.0.2 through a launch agent that enters nnc_h2
# (ip netns exec) where ssh would log in to a real host, and ranks talk TCP over the
# veth link only (btl self,tcp; loopback and shared memory are excluded).
#
#   scripts/mpi-two-hosts.sh PROG [ARGS...]     e.g. a program from `nnc build --mpi`
#
# Both "hosts" see the same filesystem, as on a cluster with a shared home directory.
# The namespaces are removed at the end.
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 PROG [ARGS...]" >&2; exit 2; fi
[ "$(id -u)" = 0 ] || { echo "error: needs root (ip netns)" >&2; exit 1; }
prog=$(realpath "$1"); shift
tmp=$(mktemp -d)
remove_namespaces() { ip netns del nnc_h1 2>/dev/null || true; ip netns del nnc_h2 2>/dev/null || true; }
trap 'remove_namespaces; rm -rf "$tmp"' EXIT
remove_namespaces  # left over from an interrupted run
ip netns add nnc_h1
ip netns add nnc_h2
ip link add nnc_v1 type veth peer name nnc_v2
ip link set nnc_v1 netns nnc_h1
ip link set nnc_v2 netns nnc_h2
for i in 1 2; do
  ip -n nnc_h$i addr add 10.99.0.$i/24 dev nnc_v$i
  ip -n nnc_h$i link set nnc_v$i up
  ip -n nnc_h$i link set lo up
done
ip netns exec nnc_h1 ip route get 10.99.0.2 > /dev/null  # routed over the veth link
echo "namespaces up: nnc_h1 10.99.0.1 <-veth-> nnc_h2 10.99.0.2"

# The launch agent, called as ssh would be: AGENT HOST COMMAND...
cat > "$tmp/agent" <<'AGENT'
#!/bin/sh
host=$1
shift
case $host in
  10.99.0.1) ns=nnc_h1 ;;
  10.99.0.2) ns=nnc_h2 ;;
  *) echo "agent: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" /bin/sh -c "$*"
AGENT
chmod +x "$tmp/agent"
printf '10.99.0.1 slots=1\n10.99.0.2 slots=1\n' > "$tmp/hosts"

# Variables the program reads, passed on to the ranks where set.
pass=(-x PATH)
for v in NNC_MPI_CHECK NNC_MPI_STATS NNC_MPI_BUCKET_KB NNC_DATA OMP_NUM_THREADS; do
  [ -n "${!v:-}" ] && pass+=(-x "$v")
done
ip netns exec nnc_h1 mpirun --allow-run-as-root -np 2 --hostfile "$tmp/hosts" --map-by node \
  --mca plm_rsh_agent "$tmp/agent" \
  --mca btl self,tcp --mca btl_tcp_if_include 10.99.0.0/24 --mca oob_tcp_if_include 10.99.0.0/24 \
  "${pass[@]}" \
  /bin/sh -c 'echo "rank $OMPI_COMM_WORLD_RANK in namespace $(ip netns identify $$)" >&2; exec "$0" "$@"' "$prog" "$@"
