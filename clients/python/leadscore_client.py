"""Compatibility shim: the client is now the ``leadscore`` package.

``import leadscore_client`` keeps working (with this directory on
``sys.path``, or with the package installed); new code should use
``from leadscore import Client, AsyncClient, Pusher``.
"""

import os as _os
import sys as _sys

try:
    import leadscore as _pkg
except ImportError:                 # not installed: the package next to this file
    _sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))
    import leadscore as _pkg

from leadscore import *  # noqa: E402,F401,F403
from leadscore import __all__, __version__  # noqa: E402,F401
from leadscore.errors import error_from_reply as _error_from_reply  # noqa: E402,F401

del _pkg
