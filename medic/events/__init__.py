"""Domain events: the transactional outbox through which facts cross layers.

A lower layer records what happened (``event_record``) in the same transaction as the state
change; higher layers register consumers (``consumer_register``) and react. See
docs/architecture.md.
"""
