"""A contract with every kind of parameter and body, and handlers that echo what they get:
`tests/api/test_dispatch.py` serves it through Connexion's own app and through ours."""
