//! A real `redis-server` for the tests, on a free loopback port, stopped when the test
//! process ends.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A `redis-server` process this test binary started.
pub struct RedisServer {
    pub url: String,
    port: u16,
    process: Mutex<Option<Child>>,
}

impl RedisServer {
    /// One server shared by every test of the binary.
    pub fn shared() -> &'static RedisServer {
        static SERVER: OnceLock<RedisServer> = OnceLock::new();
        SERVER.get_or_init(RedisServer::start)
    }

    /// A server of its own (for tests that stop it).
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let server = RedisServer {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            process: Mutex::new(None),
        };
        server.resume();
        server
    }

    /// Starts the process (again, on the same port) and waits until it accepts connections.
    pub fn resume(&self) {
        let mut process = self.process.lock().unwrap();
        assert!(process.is_none(), "already running");
        // The shell stops redis-server once this test process is gone, so that no server
        // outlives the tests.
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
             --protected-mode yes --loglevel warning & r=$!; \
             trap 'kill $r 2>/dev/null; wait $r' EXIT TERM; \
             while kill -0 {parent} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.3; done",
            port = self.port,
            parent = std::process::id(),
        );
        assert!(
            Command::new("sh")
                .args(["-c", "command -v redis-server"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success()),
            "redis-server is not installed: the test command installs Debian's redis-server \
             package (apt-get install redis-server)"
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        *process = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process; its port closes.
    pub fn stop(&self) {
        if let Some(mut child) = self.process.lock().unwrap().take() {
            // SIGTERM reaches the shell, whose trap stops redis-server.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A hub name no other test uses, so that tests sharing a server do not hear each other.
pub fn unique_hub() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "Test{}_{}.Hub",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}
