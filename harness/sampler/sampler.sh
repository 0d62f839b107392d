# lbbench sampler: prints the counters of this namespace (and of the given PIDs) every INTERVAL
# seconds, COUNT times at most, each snapshot framed by "@@tick <epoch ms>" … "@@end". One shell
# loop per node and cat of /proc files: cheap enough to run beside the load without being the load.
# Usage: sh sampler.sh INTERVAL COUNT DISCOVER [PID...]
# DISCOVER=1: also watch every process in this network namespace, found afresh each tick (a
# generator started after the sampler is seen); for a node that is a namespace of its own, not a
# whole machine. `[ a -ef b ]` is a shell builtin: no fork per process.
interval=$1; count=$2; discover=$3; shift 3
# Stopped between snapshots: sleep in the background and `wait`, which a signal interrupts at
# once (a foreground sleep would hold the TERM until it ends), and take the sleep along.
trap 'kill $nap 2>/dev/null; exit 0' TERM INT
nap=
i=0
while [ "$i" -lt "$count" ]; do
  echo "@@tick $(date +%s%3N)"
  found=""
  if [ "$discover" = 1 ]; then
    for d in /proc/[0-9]*; do
      p=${d#/proc/}
      [ "$p" = "$$" ] && continue
      [ "$d/ns/net" -ef /proc/self/ns/net ] && found="$found $p"
    done
  fi
  for f in /proc/stat /proc/net/dev /proc/net/snmp /proc/net/netstat /proc/sys/net/netfilter/nf_conntrack_count /proc/net/stat/nf_conntrack; do
    [ -r "$f" ] || continue
    echo "@@file $f"
    cat "$f"
  done
  for p in "$@" $found; do
    [ -r "/proc/$p/stat" ] || continue
    echo "@@pid $p"
    # stat first (CPU time), then one schedstat line per thread (time run, time waited runnable).
    cat "/proc/$p/stat" /proc/"$p"/task/*/schedstat 2>/dev/null
  done
  echo "@@end"
  i=$((i + 1))
  sleep "$interval" &
  nap=$!
  wait $nap
done
