#!/bin/sh
# Usage: check-activation.sh ACTIVATION-FILE UNIT-FILE
#
# Checks the D-Bus activation file: a [D-BUS Service] group with Name=,
# an absolute Exec= that runs fdbroker on the system bus, User=root and
# SystemdService=; and that it agrees with the systemd unit (the unit's
# BusName= is the activated name, SystemdService= names the unit, whose
# Alias= is the dbus-NAME.service that dbus would otherwise look for).
set -u

act=${1:?usage: check-activation.sh ACTIVATION-FILE UNIT-FILE}
unit=${2:?usage: check-activation.sh ACTIVATION-FILE UNIT-FILE}
name=org.fdbroker.Broker1
failed=0

fail() {
    echo "FAIL: $*"
    failed=1
}

# value FILE KEY: the value of the first KEY= line (whitespace-trimmed).
value() {
    sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | head -n 1 | sed 's/[[:space:]]*$//'
}

[ -r "$act" ] || { echo "FAIL: cannot read $act"; exit 1; }
[ -r "$unit" ] || { echo "FAIL: cannot read $unit"; exit 1; }

first_group=$(grep -m 1 '^\[' "$act")
[ "$first_group" = "[D-BUS Service]" ] ||
    fail "$act: first group is '$first_group', expected '[D-BUS Service]'"

[ "$(value "$act" Name)" = "$name" ] ||
    fail "$act: Name= is '$(value "$act" Name)', expected '$name'"

exec_line=$(value "$act" Exec)
case "$exec_line" in
    /*/fdbroker\ --bus=system|/*/fdbroker\ --bus=system\ *) ;;
    *) fail "$act: Exec= is '$exec_line', expected '/ABSOLUTE/PATH/fdbroker --bus=system'" ;;
esac

[ "$(value "$act" User)" = root ] ||
    fail "$act: User= is '$(value "$act" User)', expected 'root'"

sdservice=$(value "$act" SystemdService)
[ "$sdservice" = "$(basename "$unit")" ] ||
    fail "$act: SystemdService= is '$sdservice', expected '$(basename "$unit")'"

[ "$(value "$unit" BusName)" = "$name" ] ||
    fail "$unit: BusName= is '$(value "$unit" BusName)', expected '$name'"

[ "$(value "$unit" Type)" = dbus ] ||
    fail "$unit: Type= is '$(value "$unit" Type)', expected 'dbus'"

[ "$(value "$unit" Alias)" = "dbus-$name.service" ] ||
    fail "$unit: Alias= is '$(value "$unit" Alias)', expected 'dbus-$name.service'"

unit_exec=$(value "$unit" ExecStart)
[ "$unit_exec" = "$exec_line" ] ||
    fail "$unit: ExecStart= '$unit_exec' differs from the activation file's Exec= '$exec_line'"

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "OK: $act and $unit agree (Name=$name, Exec=$exec_line, User=root, SystemdService=$sdservice)"
