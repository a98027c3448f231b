"""The operations page (``/ops/``) and its operator API (``/v1/ops/...``), hosted by routing.

- ``domain.py``: the at-risk rule and the rows an operator sees (pure).
- ``ports.py``, ``service.py``: the use cases against small Protocols.
- ``repository.py``: the status view, the dead-letter index and the replay ledger in routing's
  schema; ``bus.py``: dead letters fetched and replayed on Kafka.
- ``handlers.py``, ``api.py``: the consumers and the routes (parse, authorise, call).
- ``wiring.py``: what routing's composition root calls to add all of it.
"""
