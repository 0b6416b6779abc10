-- The raw database reference for `make bench-ingest` (pgbench -f, one transaction per beat):
-- what PostgreSQL itself sustains for a heartbeat's writes, on the same cluster, the same tables
-- and indexes, with the same durability. One INSERT of a heartbeat row and one UPDATE of its
-- service row (status, beat time, deadline) in one transaction; services picked at random.
-- :first and :last are the ids of the benchmark's services (pgbench -D).
\set sid random(:first, :last)
BEGIN;
INSERT INTO heartbeats_heartbeat (service_id, time, status, message, source)
  VALUES (:sid, now(), 'UP', 'bench', 'v2');
UPDATE heartbeats_service
   SET last_status = 'UP', last_heartbeat_at = now(),
       next_deadline_at = now() + make_interval(secs => alert_interval * 60)
 WHERE id = :sid;
END;
