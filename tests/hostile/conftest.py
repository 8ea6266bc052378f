# SPDX-License-Identifier: LGPL-2.1-or-later
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'integration'))
from fixtures import *  # noqa: E402,F401,F403
