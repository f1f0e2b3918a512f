//! A fresh PostgreSQL database per test, on the server at `BREAKWATER_TEST_PG`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the test ends.
//!
//! Without a server the tests that need one skip with a printed reason, except under
//! `CI=true`, where they fail: CI starts PostgreSQL, so a skip there would hide a broken
//! setup.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this support"
)]

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

/// The server's admin URL (any database on it), from `BREAKWATER_TEST_PG`.
pub fn admin_url() -> String {
    std::env::var("BREAKWATER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test; dropped (with its connections) on drop.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a new, empty database, or `None` (printing why) when no server answers and
    /// this is not CI.
    pub async fn create() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = admin_url();
        let client = match connect(&admin).await {
            Ok(client) => client,
            Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!(
                    "PostgreSQL at {admin} does not answer ({why}); with CI=true these tests must run"
                )
            }
            Err(why) => {
                eprintln!("skipped: PostgreSQL at {admin} does not answer ({why})");
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "bw_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("BREAKWATER_TEST_PG must end in /<database>: {admin}"),
        };
        Some(Self { name, url })
    }

    /// The database's URL, for `DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async code: a thread with its own runtime does the round trip.
        let name = self.name.clone();
        let joined = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(client) = connect(&admin_url()).await {
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
        if joined.is_err() {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// What a [`Gate`] does with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Open,
    /// Bytes stop both ways; connections hang.
    Stalled,
    /// Every connection is closed and new ones are closed at once.
    Cut,
}

/// A TCP relay to PostgreSQL that a test can stall or cut: a network partition, or a
/// server gone, on a real socket. Once open again, bytes held back by a stall flow on.
pub struct Gate {
    addr: std::net::SocketAddr,
    flow: tokio::sync::watch::Sender<Flow>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// A relay on a free loopback port to the server of `admin_url()`.
    pub async fn start() -> Self {
        let target = pg_addr();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gate");
        let addr = listener.local_addr().expect("gate address");
        let (flow, watch) = tokio::sync::watch::channel(Flow::Open);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watch.borrow() == Flow::Cut {
                    continue;
                }
                let (watch, target) = (watch.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    // Either direction ending (or a cut) closes both sockets.
                    tokio::select! {
                        () = relay(client_read, server_write, watch.clone()) => {}
                        () = relay(server_read, client_write, watch) => {}
                    }
                });
            }
        });
        Self { addr, flow, task }
    }

    /// `url` (a database on the PostgreSQL server) reached through the gate instead.
    pub fn url_for(&self, url: &str) -> String {
        url.replacen(&pg_addr(), &self.addr.to_string(), 1)
    }

    /// Stops every byte, both ways.
    pub fn stall(&self) {
        self.flow.send_replace(Flow::Stalled);
    }

    /// Closes every connection and refuses new ones, as a server that went away.
    pub fn cut(&self) {
        self.flow.send_replace(Flow::Cut);
    }

    /// Lets bytes flow again.
    pub fn open(&self) {
        self.flow.send_replace(Flow::Open);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `host:port` of the server in `admin_url()`.
fn pg_addr() -> String {
    let url = admin_url();
    let rest = url.split_once('@').map_or(url.as_str(), |(_, rest)| rest);
    let rest = rest.trim_start_matches("postgres://");
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Copies `from` to `to` while the gate is open; returns when either side ends or on a cut.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut flow: tokio::sync::watch::Receiver<Flow>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = flow.wait_for(|f| *f == Flow::Cut) => {
                let _ = changed;
                return;
            }
        };
        // Held here while stalled; a cut ends the connection.
        match flow.wait_for(|f| *f != Flow::Stalled).await {
            Ok(f) if *f == Flow::Open => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
