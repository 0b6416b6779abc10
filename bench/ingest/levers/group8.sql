-- Group commit, database side: the writes of 8 heartbeats (INSERT + UPDATE each, as in
-- reference.sql) committed in one transaction. Beats/s = tps x 8.
\set a random(:first, :last)
\set b random(:first, :last)
\set c random(:first, :last)
\set d random(:first, :last)
\set e random(:first, :last)
\set f random(:first, :last)
\set g random(:first, :last)
\set h random(:first, :last)
BEGIN;
INSERT INTO heartbeats_heartbeat (service_id, time, status, message, source)
  SELECT sid, now(), 'UP', 'bench', 'v2' FROM unnest(ARRAY[:a, :b, :c, :d, :e, :f, :g, :h]) AS sid;
UPDATE heartbeats_service
   SET last_status = 'UP', last_heartbeat_at = now(),
       next_deadline_at = now() + make_interval(secs => alert_interval * 60)
 WHERE id IN (:a, :b, :c, :d, :e, :f, :g, :h);
END;
