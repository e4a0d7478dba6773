"""The HTTP side of the Tasks API."""

import warnings

# Connexion 3.3 imports starlette.testclient at import time, which warns every user of
# the command line about a test dependency; nothing here uses it.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
