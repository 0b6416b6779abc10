"""Medic v1 compatibility: the v1 HTTP API deployed clients still call, and the import of a v1
database. Sits above both domains (heartbeats, alerting); nothing imports it."""
