"""The service around the handlers: composition root (`app`), settings, the `todo-api`
command, start-up, logs, HTTP limits, token verification, problems, and the corrections
to Connexion (`patches`)."""

import warnings

with warnings.catch_warnings():
    # Connexion 3.3 imports starlette.testclient at import time, which warns every user of
    # the command line about a test dependency (httpx); nothing here uses it. Importing it
    # here, once, keeps the filter local instead of changing the process's warning filters.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    import connexion  # noqa: F401
