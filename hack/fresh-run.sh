#!/usr/bin/env bash
# fresh-run.sh CMD [ARG...] runs CMD as a fresh machine would, and then checks that it left
# nothing behind. Root only.
#
# CMD runs in a private mount namespace with a new, empty tmpfs on /run, so /run/netns is a plain
# directory as on a machine where nothing ever ran `ip netns add` (a machine that did has a shared
# bind mount there, which hides a class of bugs: docs/testing.md). Nothing CMD mounts reaches the
# machine's mount table, and the machine's /run/netns is not visible to it.
#
# Afterwards, still in that mount namespace, it fails if CMD left:
#   - a network namespace (`ip netns list` not empty), or `ip netns list` printing an error;
#   - a mount that was not there before CMD;
#   - a process (any process in this mount namespace but the script itself, or anywhere with this
#     run's PODSG_FRESH_RUN_INSIDE token in its environment: a node's daemons run in mount
#     namespaces of their own), which it then kills. The token is unique to the run, so that two
#     runs on one machine at the same time never take each other's processes for leaks;
#   - a link, route or rule in the root network namespace that was not there before CMD (the
#     network namespace is the machine's: another test run on the machine at the same time
#     would show here too).
set -euo pipefail

# Every run, a nested one too (make test under `hack/fresh-run.sh .ci/run`), gets a mount
# namespace and a token of its own: a nested run that took its parent's would find the
# parent's processes in its mount namespace, with its token, and kill them as leaks.
if [ "${1:-}" != --inside ]; then
  PODSG_FRESH_RUN_INSIDE="$$-$(date +%s%N)"
  export PODSG_FRESH_RUN_INSIDE
  exec unshare --mount --propagation private -- "$0" --inside "$@"
fi
shift

mount -t tmpfs -o mode=0755 tmpfs /run
mounts_before=$(awk '{print $5}' /proc/self/mountinfo | sort)
net_state() {
  ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
  ip route show table all | grep -v -E '^(local|broadcast|multicast) ' | sed 's/^/route /'
  ip -6 route show table all | grep -v -E '^(local|multicast|anycast) ' | sed 's/^/route6 /'
  ip rule show | sed 's/^/rule /'
}
net_before=$(net_state | sort)

status=0
"$@" || status=$?

leaks=()
ns_out=$(ip netns list 2>&1)
[ -z "$ns_out" ] || leaks+=("network namespaces / errors from 'ip netns list':"$'\n'"$ns_out")

new_mounts=$(comm -13 <(echo "$mounts_before") <(awk '{print $5}' /proc/self/mountinfo | sort) | grep -v '^/run/netns$' || true)
[ -z "$new_mounts" ] || leaks+=("mounts:"$'\n'"$new_mounts")

new_net=$(comm -13 <(echo "$net_before") <(net_state | sort) || true)
[ -z "$new_net" ] || leaks+=("in the root network namespace:"$'\n'"$new_net")

me=$(readlink /proc/$$/ns/mnt)
procs=()
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = $$ ] && continue
  if [ "$(readlink "$p/ns/mnt" 2>/dev/null)" != "$me" ]; then
    { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "PODSG_FRESH_RUN_INSIDE=$PODSG_FRESH_RUN_INSIDE" || continue
  fi
  cmdline=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
  [ -n "$cmdline" ] || continue # a zombie, or gone meanwhile
  procs+=("$pid $cmdline")
done
if [ ${#procs[@]} -gt 0 ]; then
  leaks+=("processes (killed now):"$'\n'"$(printf '%s\n' "${procs[@]}")")
  for p in "${procs[@]}"; do kill -KILL "${p%% *}" 2>/dev/null || true; done
fi

if [ ${#leaks[@]} -gt 0 ]; then
  echo "fresh-run: '$*' left things behind (tests must clean up, also on failure):" >&2
  printf '%s\n' "${leaks[@]}" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
