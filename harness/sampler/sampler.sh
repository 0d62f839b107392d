# lbbench sampler: prints the counters of this namespace (and of the given PIDs) every INTERVAL
# seconds, COUNT times at most, each snapshot framed by "@@tick <epoch ms>" … "@@end". One shell
# loop per node and cat of /proc files: cheap enough to run beside the load without being the load.
# Usage: sh sampler.sh INTERVAL COUNT [PID...]
interval=$1; count=$2; shift 2
i=0
while [ "$i" -lt "$count" ]; do
  echo "@@tick $(date +%s%3N)"
  for f in /proc/stat /proc/net/dev /proc/net/snmp /proc/net/netstat /proc/sys/net/netfilter/nf_conntrack_count /proc/net/stat/nf_conntrack; do
    [ -r "$f" ] || continue
    echo "@@file $f"
    cat "$f"
  done
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    echo "@@pid $p"
    cat "/proc/$p/stat"
  done
  echo "@@end"
  i=$((i + 1))
  sleep "$interval"
done
