-- What Medic sends for a steady-state beat: one statement (the UPDATE of the service and the
-- INSERT of the heartbeat in one data-modifying CTE, heartbeats/services.py), in autocommit.
\set sid random(:first, :last)
WITH service AS (
  UPDATE heartbeats_service
     SET last_status = 'UP', last_heartbeat_at = now(),
         next_deadline_at = now() + make_interval(secs => LEAST(alert_interval, 5270400) * 60)
                            + make_interval(secs => LEAST(grace_period_seconds, 604800))
   WHERE id = :sid AND active AND status = 'up' AND threshold <= 1 AND schedule_kind = 'interval'
  RETURNING *
), beat AS (
  INSERT INTO heartbeats_heartbeat (service_id, time, status, message, source)
  SELECT id, now(), 'UP', 'bench', 'v2' FROM service RETURNING id
)
SELECT beat.id, service.* FROM beat, service;
