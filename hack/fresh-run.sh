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
#   - a process (any process in this mount namespace but the script itself), which it then kills.
set -euo pipefail

if [ "${PODSG_FRESH_RUN_INSIDE:-}" != 1 ]; then
  export PODSG_FRESH_RUN_INSIDE=1
  exec unshare --mount --propagation private -- "$0" "$@"
fi

mount -t tmpfs -o mode=0755 tmpfs /run
mounts_before=$(awk '{print $5}' /proc/self/mountinfo | sort)

status=0
"$@" || status=$?

leaks=()
ns_out=$(ip netns list 2>&1)
[ -z "$ns_out" ] || leaks+=("network namespaces / errors from 'ip netns list':"$'\n'"$ns_out")

new_mounts=$(comm -13 <(echo "$mounts_before") <(awk '{print $5}' /proc/self/mountinfo | sort) | grep -v '^/run/netns$' || true)
[ -z "$new_mounts" ] || leaks+=("mounts:"$'\n'"$new_mounts")

me=$(readlink /proc/$$/ns/mnt)
procs=()
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = $$ ] && continue
  [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$me" ] || continue
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
