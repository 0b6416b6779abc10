-- The service row update without the indexed deadline: as reference.sql, but the UPDATE sets
-- only columns no index covers, so PostgreSQL can update the row in place (HOT) instead of
-- adding an entry to every index of heartbeats_service. The gain a narrow per-beat table
-- (deadline kept apart from the indexed service row) could bring.
\set sid random(:first, :last)
BEGIN;
INSERT INTO heartbeats_heartbeat (service_id, time, status, message, source)
  VALUES (:sid, now(), 'UP', 'bench', 'v2');
UPDATE heartbeats_service SET last_status = 'UP', last_heartbeat_at = now() WHERE id = :sid;
END;
