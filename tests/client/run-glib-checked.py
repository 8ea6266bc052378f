#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run a TAP-printing GLib test program that needs no bus:

    run-glib-checked.py PROGRAM [ARG...]

with G_DEBUG=fatal-criticals, passing its TAP on and adding one subtest: no
GLib CRITICAL or WARNING on its stderr (glibcheck.run_glib_checked)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import glibcheck  # noqa: E402

if len(sys.argv) < 2:
    sys.exit('usage: run-glib-checked.py PROGRAM [ARG...]')
sys.exit(glibcheck.run_glib_checked(sys.argv[1:]))
