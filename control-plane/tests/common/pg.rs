//! Real PostgreSQL for tests: a fresh database per test in the cluster `scripts/test` starts,
//! and private clusters that a test may stop and start (the outbox test stops its database
//! mid-test, which a shared cluster could not allow).

use std::path::PathBuf;
use std::process::Command;

use sqlx::{Connection, Executor, PgConnection};

/// The shared test cluster's admin URL.
pub fn admin_url() -> String {
    std::env::var("CALLWAY_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "CALLWAY_TEST_DATABASE_URL is not set: run the suite with scripts/test, which installs and \
             starts a real PostgreSQL (or export the URL of a disposable cluster)"
        )
    })
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (server, _) = url.rsplit_once('/').expect("database URL ends with /dbname");
    format!("{server}/{db}")
}

/// A new, empty database in the shared cluster; returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let name = format!("cw_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin).await.expect("connect to the test cluster");
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    with_database(&admin, &name)
}

/// Creates Supabase's three API roles if missing (cluster-wide; safe to race).
pub async fn ensure_supabase_roles(url: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    for (role, extra) in [("anon", ""), ("authenticated", ""), ("service_role", " BYPASSRLS")] {
        let sql = format!(
            "DO $$ BEGIN CREATE ROLE {role} NOLOGIN NOINHERIT{extra}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        );
        conn.execute(sql.as_str()).await.unwrap();
    }
}

/// A PostgreSQL cluster of this test's own, on a free loopback port.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// `cmd` as the cluster's owner, started in `cwd` (a directory that owner can enter: as root
/// the `postgres` user often cannot reach the checkout the tests run from).
fn as_postgres(cmd: &str, cwd: &std::path::Path) -> Command {
    // initdb refuses to run as root: drop to the `postgres` user Debian's package creates.
    let mut c = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", cmd]);
        c
    } else {
        Command::new(cmd)
    };
    c.current_dir(cwd);
    c
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgCluster {
    /// initdb + start. Needs `CALLWAY_PG_BIN` (set by `scripts/test`).
    pub fn start() -> PgCluster {
        let bin = PathBuf::from(std::env::var("CALLWAY_PG_BIN").unwrap_or_else(|_| {
            panic!(
                "CALLWAY_PG_BIN is not set: run the suite with scripts/test (it exports PostgreSQL's bin dir)"
            )
        }));
        // `scripts/postgres` names a directory the `postgres` user can reach; the system's
        // temporary directory otherwise.
        let base =
            std::env::var_os("CALLWAY_PG_CLUSTER_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("callway-pg-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("a private cluster directory in {}: {e}", base.display()));
        if running_as_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:", &dir.path().display().to_string()]);
                    c
                },
                "chown",
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = PgCluster { dir, bin, port };
        let mut c = as_postgres(&cluster.tool("initdb"), cluster.dir.path());
        c.args(["-D", &cluster.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"]);
        run(c, "initdb");
        cluster.resume();
        cluster
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The `postgres` database URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server now (connections are cut).
    pub fn stop(&self) {
        let mut c = as_postgres(&self.tool("pg_ctl"), self.dir.path());
        c.args(["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        run(c, "pg_ctl stop");
    }

    /// Starts (again) on the same port and data.
    pub fn resume(&self) {
        let log = self.dir.path().join("server.log").display().to_string();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut c = as_postgres(&self.tool("pg_ctl"), self.dir.path());
        c.args(["-D", &self.data(), "-l", &log, "-w", "-o", &opts, "start"]);
        run(c, "pg_ctl start");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut c = as_postgres(&self.tool("pg_ctl"), self.dir.path());
        c.args(["-D", &self.data(), "-m", "immediate", "stop"]);
        let _ = c.output();
    }
}
