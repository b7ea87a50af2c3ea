/**
 * The SQL interface pgraft installs into its PostgreSQL server: the operations guide's functions
 * (pgraft_is_leader(), pgraft_get_cluster_status(), pgraft_kv_put(), ...), the replicated table
 * pgraft.kv, and the tables the node writes to make the functions tell the truth.
 *
 * How the functions learn the truth, using only what ships with PostgreSQL:
 * - Status functions read pgraft.node_status, one row that the node rewrites every half heartbeat
 *   interval. The table is UNLOGGED, so this traffic never reaches the WAL (nor replicas, nor
 *   backups). A row older than `stale_after_ms` (2.5 heartbeat intervals) means the node stopped
 *   reporting: pgraft_get_worker_state() then says STOPPED and pgraft_is_leader() is false, within
 *   three heartbeat intervals of the node dying, kill -9 included.
 * - Functions that change the cluster (pgraft_kv_put, pgraft_add_node, ...) call the node through
 *   contrib's dblink: the node serves a password-protected loopback endpoint speaking PostgreSQL's
 *   protocol (src/postgres/wire-server.ts) and publishes its port and a per-start password in
 *   pgraft.node_status. The node answers once the change is committed and, for key-value writes,
 *   applied to pgraft.kv here; errors come back with a pgraft SQLSTATE (class PR, see SQLSTATES).
 * - pgraft.kv is written only by the node, applying committed Raft entries, with the applied index
 *   stored in the same transaction (pgraft.applied), so a crash at any point neither loses nor
 *   repeats an entry. A trigger refuses everyone else's writes, superusers' included.
 *
 * Versioned: pgraft.meta holds schema_version. A newer node upgrades an older schema in place (the
 * migrations below, each once, in one transaction); an older node refuses a newer schema. Functions
 * and grants are (re)created on every install, so they always match the node that runs.
 * Every function is revoked from PUBLIC; superusers may call all; the read-only status functions are
 * granted to the role pgraft_monitor, which monitoring users can be made members of.
 */

/** The schema version this code installs. */
export const SCHEMA_VERSION = 2;

/** SQLSTATEs of pgraft's own errors (class "PR"), as the SQL functions raise them. */
export const SQLSTATES = Object.freeze({
  notLeader: "PR001",
  noQuorum: "PR002",
  timeout: "PR003",
  nodeNotRunning: "PR004",
  changeInProgress: "PR005",
  busy: "PR006",
  invalid: "22023",
});

/** Each migration takes the schema from version i to i + 1 (index 0: nothing to version 1). */
export const MIGRATIONS: readonly string[] = [
  // 1: the tables.
  `
  CREATE SCHEMA IF NOT EXISTS pgraft;
  REVOKE ALL ON SCHEMA pgraft FROM PUBLIC;
  CREATE TABLE pgraft.meta (key text PRIMARY KEY, value text NOT NULL);
  CREATE TABLE pgraft.kv (
    key_bytes bytea PRIMARY KEY,
    key text NOT NULL,
    value_bytes bytea NOT NULL,
    value text,
    version bigint NOT NULL,
    create_revision bigint NOT NULL,
    mod_revision bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
  );
  COMMENT ON TABLE pgraft.kv IS 'pgraft''s replicated key-value store, written only by the pgraft node as it applies committed Raft entries. key and value are the bytes as text when they are valid UTF-8 (value is NULL otherwise; key shows \\x and hex); key_bytes and value_bytes hold the exact bytes.';
  CREATE TABLE pgraft.applied (
    id int PRIMARY KEY CHECK (id = 1),
    applied_index bigint NOT NULL,
    updated_at timestamptz NOT NULL
  );
  INSERT INTO pgraft.applied VALUES (1, 0, clock_timestamp());
  CREATE UNLOGGED TABLE pgraft.node_status (
    id int PRIMARY KEY CHECK (id = 1),
    node_id int NOT NULL,
    name text NOT NULL,
    cluster_id text NOT NULL,
    pid int NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL,
    reported_at timestamptz NOT NULL,
    stale_after_ms int NOT NULL,
    worker_state text NOT NULL,
    state text NOT NULL,
    current_term bigint NOT NULL,
    leader_id bigint NOT NULL,
    quorum boolean NOT NULL,
    num_nodes int NOT NULL,
    messages_processed bigint NOT NULL,
    heartbeats_sent bigint NOT NULL,
    elections_triggered bigint NOT NULL,
    log_size bigint NOT NULL,
    last_index bigint NOT NULL,
    commit_index bigint NOT NULL,
    last_applied bigint NOT NULL,
    replicated bigint NOT NULL,
    committed bigint NOT NULL,
    applied bigint NOT NULL,
    errors bigint NOT NULL,
    nodes jsonb NOT NULL,
    replication jsonb NOT NULL,
    endpoint_host text NOT NULL,
    endpoint_port int NOT NULL,
    endpoint_password text NOT NULL
  );
  CREATE FUNCTION pgraft.refuse_write() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    RAISE EXCEPTION 'pgraft: % on %.% is refused: only the pgraft node writes this table, as it applies committed Raft entries', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
      USING ERRCODE = '42501', HINT = 'Write keys with SELECT pgraft_kv_put(key, value) on the leader, or through the etcd API.';
  END
  $fn$;
  CREATE TRIGGER refuse_write BEFORE INSERT OR UPDATE OR DELETE ON pgraft.kv FOR EACH ROW EXECUTE FUNCTION pgraft.refuse_write();
  CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON pgraft.kv FOR EACH STATEMENT EXECUTE FUNCTION pgraft.refuse_write();
  CREATE TRIGGER refuse_write BEFORE INSERT OR UPDATE OR DELETE ON pgraft.applied FOR EACH ROW EXECUTE FUNCTION pgraft.refuse_write();
  CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON pgraft.applied FOR EACH STATEMENT EXECUTE FUNCTION pgraft.refuse_write();
  CREATE FUNCTION pgraft.status_fresh() RETURNS boolean LANGUAGE sql VOLATILE AS $fn$ SELECT false $fn$;
  `,
  // 2: the etcdctl-style member list (a view over the node's report).
  `
  CREATE VIEW pgraft.member_list AS
    SELECT to_hex((n->>'node_id')::bigint) AS id,
           CASE WHEN NOT pgraft.status_fresh() THEN 'unknown'
                WHEN (n->>'reachable')::boolean THEN 'started'
                ELSE 'unreachable' END AS status,
           n->>'name' AS name,
           'http://' || (n->>'address') || ':' || (n->>'port') AS peer_addrs,
           coalesce(n->>'client_url', '') AS client_addrs,
           (n->>'is_learner')::boolean AS is_learner
      FROM pgraft.node_status s, jsonb_array_elements(s.nodes) AS n
     WHERE s.id = 1;
  `,
];

/**
 * Functions, recreated on every install (CREATE OR REPLACE), in schema public where the guide's
 * unqualified calls find them. `${dblink}` is the schema that holds contrib's dblink.
 */
export function functionsSql(dblinkSchema: string): string {
  const dblink = quoteIdentifier(dblinkSchema);
  const definer = "SECURITY DEFINER SET search_path = pg_catalog, pgraft, pg_temp";
  return `
  CREATE OR REPLACE FUNCTION pgraft.status_fresh() RETURNS boolean LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT coalesce((SELECT clock_timestamp() - reported_at <= stale_after_ms * interval '1 millisecond' FROM pgraft.node_status WHERE id = 1), false)
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_get_worker_state() RETURNS text LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT CASE WHEN pgraft.status_fresh() THEN (SELECT worker_state FROM pgraft.node_status WHERE id = 1) ELSE 'STOPPED' END
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_is_leader() RETURNS boolean LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT pgraft.status_fresh() AND coalesce((SELECT state = 'leader' AND quorum FROM pgraft.node_status WHERE id = 1), false)
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_get_term() RETURNS bigint LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT coalesce((SELECT current_term FROM pgraft.node_status WHERE id = 1), 0)
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_get_leader() RETURNS bigint LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT CASE WHEN pgraft.status_fresh() THEN coalesce((SELECT leader_id FROM pgraft.node_status WHERE id = 1), 0) ELSE 0 END
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_get_cluster_status(
      OUT node_id int, OUT current_term bigint, OUT leader_id bigint, OUT state text, OUT num_nodes int,
      OUT messages_processed bigint, OUT heartbeats_sent bigint, OUT elections_triggered bigint)
    RETURNS SETOF record LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT s.node_id, s.current_term,
           CASE WHEN pgraft.status_fresh() THEN s.leader_id ELSE 0 END,
           CASE WHEN pgraft.status_fresh() THEN s.state ELSE 'stopped' END,
           s.num_nodes, s.messages_processed, s.heartbeats_sent, s.elections_triggered
      FROM pgraft.node_status s WHERE s.id = 1
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_get_nodes(
      OUT node_id int, OUT address text, OUT port int, OUT is_leader boolean,
      OUT name text, OUT is_learner boolean, OUT reachable boolean, OUT client_url text)
    RETURNS SETOF record LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT (n->>'node_id')::int, n->>'address', (n->>'port')::int,
           pgraft.status_fresh() AND (n->>'is_leader')::boolean,
           n->>'name', (n->>'is_learner')::boolean,
           CASE WHEN pgraft.status_fresh() THEN (n->>'reachable')::boolean END,
           n->>'client_url'
      FROM pgraft.node_status s, jsonb_array_elements(s.nodes) AS n
     WHERE s.id = 1
     ORDER BY 1
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_log_get_stats(
      OUT log_size bigint, OUT last_index bigint, OUT commit_index bigint, OUT last_applied bigint,
      OUT replicated bigint, OUT committed bigint, OUT applied bigint, OUT errors bigint)
    RETURNS SETOF record LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT s.log_size, s.last_index, s.commit_index, s.last_applied, s.replicated, s.committed, s.applied, s.errors
      FROM pgraft.node_status s WHERE s.id = 1
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_log_get_replication_status(
      OUT node_id int, OUT match_index bigint, OUT next_index bigint, OUT lag bigint, OUT state text, OUT last_contact timestamptz)
    RETURNS SETOF record LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT (r->>'node_id')::int, (r->>'match_index')::bigint, (r->>'next_index')::bigint, (r->>'lag')::bigint,
           r->>'state', s.reported_at - (r->>'ms_since_contact')::bigint * interval '1 millisecond'
      FROM pgraft.node_status s, jsonb_array_elements(s.replication) AS r
     WHERE s.id = 1 AND pgraft.status_fresh()
     ORDER BY 1
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_get_version() RETURNS text LANGUAGE sql VOLATILE ${definer} AS $fn$
    SELECT value FROM pgraft.meta WHERE key = 'package_version'
  $fn$;

  -- Key-value reads: this node's copy of the replicated table (as fresh as this node's apply).
  CREATE OR REPLACE FUNCTION public.pgraft_kv_get(key text) RETURNS text LANGUAGE sql STABLE ${definer} AS $fn$
    SELECT kv.value FROM pgraft.kv WHERE kv.key_bytes = convert_to($1, 'UTF8')
  $fn$;
  CREATE OR REPLACE FUNCTION public.pgraft_kv_get_bytes(key bytea) RETURNS bytea LANGUAGE sql STABLE ${definer} AS $fn$
    SELECT kv.value_bytes FROM pgraft.kv WHERE kv.key_bytes = $1
  $fn$;
  CREATE OR REPLACE FUNCTION public.pgraft_kv_exists(key text) RETURNS boolean LANGUAGE sql STABLE ${definer} AS $fn$
    SELECT EXISTS (SELECT 1 FROM pgraft.kv WHERE kv.key_bytes = convert_to($1, 'UTF8'))
  $fn$;
  CREATE OR REPLACE FUNCTION public.pgraft_kv_list_keys() RETURNS SETOF text LANGUAGE sql STABLE ${definer} AS $fn$
    SELECT kv.key FROM pgraft.kv ORDER BY kv.key_bytes
  $fn$;

  -- Calls to the node, through dblink to its command endpoint.
  CREATE OR REPLACE FUNCTION pgraft.call_node(command jsonb) RETURNS jsonb LANGUAGE plpgsql VOLATILE ${definer} AS $fn$
  DECLARE
    s pgraft.node_status;
    answer text;
  BEGIN
    SELECT * INTO s FROM pgraft.node_status WHERE id = 1;
    IF NOT FOUND OR NOT pgraft.status_fresh() THEN
      RAISE EXCEPTION 'pgraft: cannot %: the pgraft node of this PostgreSQL server is not running', command->>'op'
        USING ERRCODE = '${SQLSTATES.nodeNotRunning}',
              HINT = 'Start it with pgraft start; SELECT pgraft_get_worker_state() says RUNNING once it reports.';
    END IF;
    SELECT t.answer INTO answer
      FROM ${dblink}.dblink(
             format('host=%s port=%s user=pgraft dbname=pgraft password=%s sslmode=disable gssencmode=disable connect_timeout=2 application_name=pgraft_sql',
                    s.endpoint_host, s.endpoint_port, s.endpoint_password),
             command::text) AS t(answer text);
    RETURN answer::jsonb;
  END
  $fn$;

  CREATE OR REPLACE FUNCTION public.pgraft_kv_put(key text, value text) RETURNS boolean LANGUAGE plpgsql VOLATILE ${definer} AS $fn$
  BEGIN
    IF key IS NULL OR value IS NULL THEN
      RAISE EXCEPTION 'pgraft: cannot put: the key and the value must not be NULL' USING ERRCODE = '${SQLSTATES.invalid}';
    END IF;
    RETURN (pgraft.call_node(jsonb_build_object('op', 'put', 'key', encode(convert_to(key, 'UTF8'), 'base64'), 'value', encode(convert_to(value, 'UTF8'), 'base64')))->>'ok')::boolean;
  END
  $fn$;
  CREATE OR REPLACE FUNCTION public.pgraft_kv_put_bytes(key bytea, value bytea) RETURNS boolean LANGUAGE plpgsql VOLATILE ${definer} AS $fn$
  BEGIN
    IF key IS NULL OR value IS NULL THEN
      RAISE EXCEPTION 'pgraft: cannot put: the key and the value must not be NULL' USING ERRCODE = '${SQLSTATES.invalid}';
    END IF;
    RETURN (pgraft.call_node(jsonb_build_object('op', 'put', 'key', encode(key, 'base64'), 'value', encode(value, 'base64')))->>'ok')::boolean;
  END
  $fn$;
  CREATE OR REPLACE FUNCTION public.pgraft_kv_delete(key text) RETURNS boolean LANGUAGE plpgsql VOLATILE ${definer} AS $fn$
  BEGIN
    IF key IS NULL THEN
      RAISE EXCEPTION 'pgraft: cannot delete: the key must not be NULL' USING ERRCODE = '${SQLSTATES.invalid}';
    END IF;
    RETURN (pgraft.call_node(jsonb_build_object('op', 'delete', 'key', encode(convert_to(key, 'UTF8'), 'base64')))->>'ok')::boolean;
  END
  $fn$;
  CREATE OR REPLACE FUNCTION public.pgraft_add_node(node_id int, address text, port int) RETURNS boolean LANGUAGE plpgsql VOLATILE ${definer} AS $fn$
  BEGIN
    IF node_id IS NULL OR address IS NULL OR port IS NULL THEN
      RAISE EXCEPTION 'pgraft: cannot add a node: node_id, address and port must not be NULL' USING ERRCODE = '${SQLSTATES.invalid}';
    END IF;
    RETURN (pgraft.call_node(jsonb_build_object('op', 'add_node', 'node_id', node_id, 'address', address, 'port', port))->>'ok')::boolean;
  END
  $fn$;
  -- With the new node's client URL and name (pgraft member add --client-url --name), so that followers
  -- forward to it and every node names it before it has started. A separate function rather than
  -- defaults on the one above: both with defaults would make the three-argument call ambiguous.
  -- client_url may be NULL to give only a name (NULL name or client_url: not given).
  CREATE OR REPLACE FUNCTION public.pgraft_add_node(node_id int, address text, port int, client_url text, name text DEFAULT NULL) RETURNS boolean LANGUAGE plpgsql VOLATILE ${definer} AS $fn$
  BEGIN
    IF node_id IS NULL OR address IS NULL OR port IS NULL THEN
      RAISE EXCEPTION 'pgraft: cannot add a node: node_id, address and port must not be NULL' USING ERRCODE = '${SQLSTATES.invalid}';
    END IF;
    RETURN (pgraft.call_node(jsonb_build_object('op', 'add_node', 'node_id', node_id, 'address', address, 'port', port,
                                                'client_url', client_url, 'name', name))->>'ok')::boolean;
  END
  $fn$;
  CREATE OR REPLACE FUNCTION public.pgraft_remove_node(node_id int) RETURNS boolean LANGUAGE plpgsql VOLATILE ${definer} AS $fn$
  BEGIN
    IF node_id IS NULL THEN
      RAISE EXCEPTION 'pgraft: cannot remove a node: node_id must not be NULL' USING ERRCODE = '${SQLSTATES.invalid}';
    END IF;
    RETURN (pgraft.call_node(jsonb_build_object('op', 'remove_node', 'node_id', node_id))->>'ok')::boolean;
  END
  $fn$;
  `;
}

/** Functions pgraft_monitor may call (they change nothing and reveal no stored values). */
export const MONITOR_FUNCTIONS: readonly string[] = [
  "public.pgraft_get_worker_state()",
  "public.pgraft_is_leader()",
  "public.pgraft_get_term()",
  "public.pgraft_get_leader()",
  "public.pgraft_get_cluster_status()",
  "public.pgraft_get_nodes()",
  "public.pgraft_log_get_stats()",
  "public.pgraft_log_get_replication_status()",
  "public.pgraft_get_version()",
];

/** Every function of the interface, for REVOKE ... FROM PUBLIC. */
export const ALL_FUNCTIONS: readonly string[] = [
  ...MONITOR_FUNCTIONS,
  "pgraft.status_fresh()",
  "pgraft.call_node(jsonb)",
  "pgraft.refuse_write()",
  "public.pgraft_kv_get(text)",
  "public.pgraft_kv_get_bytes(bytea)",
  "public.pgraft_kv_exists(text)",
  "public.pgraft_kv_list_keys()",
  "public.pgraft_kv_put(text, text)",
  "public.pgraft_kv_put_bytes(bytea, bytea)",
  "public.pgraft_kv_delete(text)",
  "public.pgraft_add_node(int, text, int)",
  "public.pgraft_add_node(int, text, int, text, text)",
  "public.pgraft_remove_node(int)",
];

export function grantsSql(): string {
  return [
    `DO $do$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgraft_monitor') THEN CREATE ROLE pgraft_monitor NOLOGIN; END IF;
     END $do$;`,
    ...ALL_FUNCTIONS.map((fn) => `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC;`),
    ...MONITOR_FUNCTIONS.map((fn) => `GRANT EXECUTE ON FUNCTION ${fn} TO pgraft_monitor;`),
    "REVOKE ALL ON ALL TABLES IN SCHEMA pgraft FROM PUBLIC;",
    "GRANT USAGE ON SCHEMA pgraft TO pgraft_monitor;",
    "GRANT SELECT ON pgraft.member_list TO pgraft_monitor;",
    // The view calls it, with the privileges of whoever reads the view.
    "GRANT EXECUTE ON FUNCTION pgraft.status_fresh() TO pgraft_monitor;",
  ].join("\n");
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
