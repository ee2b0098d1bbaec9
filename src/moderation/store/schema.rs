//! The store's schema, as the migrations that build it.

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        reason TEXT NOT NULL,
        bank TEXT NOT NULL,
        item_id TEXT NOT NULL,
        label TEXT,
        distance INTEGER NOT NULL,
        quality INTEGER NOT NULL,
        hash TEXT NOT NULL,
        frame_pts_ms INTEGER NOT NULL,
        last_frame_pts_ms INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 1,
        state TEXT NOT NULL DEFAULT 'open',
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX alerts_one_open ON alerts(stream, reason, bank, item_id) WHERE state = 'open';",
    // 2: what the bank's configuration called for, and which rotation or mirror matched.
    "ALTER TABLE alerts ADD COLUMN action TEXT NOT NULL DEFAULT 'review';
    ALTER TABLE alerts ADD COLUMN variant TEXT NOT NULL DEFAULT 'original';",
    // 3: halted streams (the deny list `on_publish` consults) and an audit log of every
    // halt, reinstatement, refused publish and confirmation.
    "CREATE TABLE stream_halts (
        stream TEXT PRIMARY KEY,
        halted INTEGER NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        alert_id INTEGER,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE stream_events (
        id INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        alert_id INTEGER,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX stream_events_by_stream ON stream_events(stream, id);",
    // 4: classifier alerts (reason 'classifier': bank = model, item_id = label) carry the
    // highest score seen.
    "ALTER TABLE alerts ADD COLUMN score REAL;",
    // 5: the outbox (one row per alert event and sink, deleted once that sink acknowledged
    // it), the delivery log, and this database's instance id (part of every message id, so
    // that ids of different daemons never collide at a consumer).
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        alert_id INTEGER NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_error TEXT,
        created_at_ms INTEGER NOT NULL,
        UNIQUE (sink, msg_id)
    );
    CREATE INDEX outbox_due ON outbox(sink, next_attempt_ms);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        alert_id INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        queued_at_ms INTEGER NOT NULL,
        delivered_at_ms INTEGER NOT NULL
    );",
    // 6: a claimed alert is still the stream's open alert for its item (later findings
    // attach to it); who claimed it.
    "DROP INDEX alerts_one_open;
    CREATE UNIQUE INDEX alerts_one_open ON alerts(stream, reason, bank, item_id) WHERE state IN ('open', 'claimed');
    ALTER TABLE alerts ADD COLUMN claimed_by TEXT;",
    // 7: evidence of classifier alerts: a small greyscale thumbnail of the first frame.
    "CREATE TABLE evidence (
        alert_id INTEGER PRIMARY KEY,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        grey BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL
    );",
    // 8: time to detect: from the raising frame leaving the decoder to the policy's verdict
    // (just before the alert is written).
    "ALTER TABLE alerts ADD COLUMN detect_ms INTEGER;",
    // 9: what retention passes look up: closed alerts by age, alerts still in the outbox.
    "CREATE INDEX alerts_by_state_age ON alerts(state, updated_at_ms);
    CREATE INDEX outbox_by_alert ON outbox(alert_id);",
    // 10: sinks also get stream halts and reinstatements, which need not have an alert:
    // outbox and deliveries rows may have no alert id (SQLite cannot drop a NOT NULL, so
    // both tables are copied into new ones).
    "CREATE TABLE outbox_new (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        alert_id INTEGER,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_error TEXT,
        created_at_ms INTEGER NOT NULL,
        UNIQUE (sink, msg_id)
    );
    INSERT INTO outbox_new (id, sink, msg_id, alert_id, payload, attempts, next_attempt_ms, last_error, created_at_ms)
        SELECT id, sink, msg_id, alert_id, payload, attempts, next_attempt_ms, last_error, created_at_ms FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_new RENAME TO outbox;
    CREATE INDEX outbox_due ON outbox(sink, next_attempt_ms);
    CREATE INDEX outbox_by_alert ON outbox(alert_id);
    CREATE TABLE deliveries_new (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        alert_id INTEGER,
        attempts INTEGER NOT NULL,
        queued_at_ms INTEGER NOT NULL,
        delivered_at_ms INTEGER NOT NULL
    );
    INSERT INTO deliveries_new (id, sink, msg_id, alert_id, attempts, queued_at_ms, delivered_at_ms)
        SELECT id, sink, msg_id, alert_id, attempts, queued_at_ms, delivered_at_ms FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_new RENAME TO deliveries;",
    // 11: one alert's history (the console's alert detail, /api/v1/audit?alert=).
    "CREATE INDEX stream_events_by_alert ON stream_events(alert_id, id);",
    // 12: the alert list filtered by state or stream, newest first (the console's queue).
    "CREATE INDEX alerts_by_state ON alerts(state, id);
    CREATE INDEX alerts_by_stream ON alerts(stream, id);",
    // 13: a sink's messages in sending order (each delivery poll reads its oldest ones).
    "CREATE INDEX outbox_by_sink ON outbox(sink, id);",
    // 14: a message its sink can never take (too large, refused for good) is set aside as
    // dead: kept, listed and counted, but no longer holding back the sink's later ones.
    "ALTER TABLE outbox ADD COLUMN dead_at_ms INTEGER;",
];
