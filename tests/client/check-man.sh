#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# check-man.sh PAGE: PAGE renders, with no warning from groff -ww (all
# warnings) or from man --warnings, and has the sections a man page needs.
# Exit 77 (skip) when groff is not installed (Debian: groff-base).
set -u
page=$1

if ! command -v groff >/dev/null 2>&1; then
    echo "SKIP: groff not installed (package groff-base)"
    exit 77
fi

status=0
warnings=$(groff -man -ww -z "$page" 2>&1)
if [ -n "$warnings" ]; then
    echo "groff -man -ww warns about $page:"
    echo "$warnings"
    status=1
fi

if command -v man >/dev/null 2>&1; then
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    if [ -n "$warnings" ]; then
        echo "man --warnings -l warns about $page:"
        echo "$warnings"
        status=1
    fi
    text=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -E UTF-8 -l "$page" 2>/dev/null)
else
    echo "man not installed (package man-db): checked with groff only"
    text=$(groff -man -Tutf8 "$page" 2>/dev/null)
fi

for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
    if ! printf '%s\n' "$text" | grep -q "^$section\$"; then
        echo "$page has no $section section"
        status=1
    fi
done
# No configure placeholder left behind.
if grep -n '@[A-Z_]*@' "$page"; then
    echo "$page has unsubstituted @VARIABLES@"
    status=1
fi
[ $status -eq 0 ] && echo "$page: OK"
exit $status
