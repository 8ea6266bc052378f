#!/bin/sh
# Usage: check-unit-user.sh UNIT-FILE SYSUSERS-FILE SYSTEMD-VERSION
#
# The generated fdbroker.service runs as the user data/fdbroker.sysusers
# creates, with exactly CAP_SETUID CAP_SETGID (ambient and bounding, nothing
# else: no CAP_DAC_OVERRIDE, no CAP_SYS_RESOURCE), and keeps its fd store
# across a stop (FileDescriptorStorePreserve=yes, RuntimeDirectoryPreserve=yes,
# --exit-idle-with-entries) exactly when built for systemd 254 or later.
set -u
unit=${1:?usage}
sysusers=${2:?usage}
version=${3:?usage}
fail=0
bad() { echo "FAIL: $*"; fail=1; }
value() { sed -n "s/^$1=//p" "$unit" | tail -1; }

user=$(awk '$1 == "u" { print $2 }' "$sysusers")
[ "$user" = fdbroker ] || bad "$sysusers creates '$user', not fdbroker"
[ "$(value User)" = "$user" ] || bad "User=$(value User), not $user"
for key in CapabilityBoundingSet AmbientCapabilities; do
    caps=$(value $key | tr ' ' '\n' | sort | tr '\n' ' ')
    [ "$caps" = "CAP_SETGID CAP_SETUID " ] || bad "$key=$(value $key)"
done
grep -q CAP_SYS_RESOURCE "$unit" && bad "CAP_SYS_RESOURCE is not needed"
grep -q '^[A-Za-z]*=.*CAP_DAC_OVERRIDE' "$unit" && bad "CAP_DAC_OVERRIDE is not needed: OpenPath opens as the owner"

case $version in
    ''|*[!0-9]*) new=no ;;
    *) [ "$version" -ge 254 ] && new=yes || new=no ;;
esac
if [ $new = yes ]; then
    [ "$(value FileDescriptorStorePreserve)" = yes ] || bad "systemd $version: FileDescriptorStorePreserve=yes missing"
    [ "$(value RuntimeDirectoryPreserve)" = yes ] || bad "systemd $version: RuntimeDirectoryPreserve=yes missing"
    value ExecStart | grep -q -- --exit-idle-with-entries || bad "systemd $version: no --exit-idle-with-entries"
else
    grep -q '^FileDescriptorStorePreserve=' "$unit" && bad "systemd $version has no FileDescriptorStorePreserve="
    [ "$(value RuntimeDirectoryPreserve)" = restart ] || bad "systemd $version: RuntimeDirectoryPreserve=restart expected"
    value ExecStart | grep -q -- --exit-idle-with-entries && bad "systemd $version: the store empties on stop; no --exit-idle-with-entries"
fi
[ $fail -eq 0 ] && echo "OK: User=$user, 2 capabilities, fd store preserved: $new (systemd $version)"
exit $fail
