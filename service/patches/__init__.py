"""Where Connexion 3.3's behaviour differs from what the contract promises, and the piece
that mends it. Each class or function says what Connexion does by default, why we override
it, the upstream issue, the test that pins it and when it can go; `docs/decisions/0002`
is the index. Nothing here runs at import time: `service.app.create_app` wires each piece."""
