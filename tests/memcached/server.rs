#![allow(unreachable_pub)]

//! A `memcached` of a test's own, on a free port of 127.0.0.1, that the test
//! can kill (`kill -9`), pause (`SIGSTOP`: a server that hangs) and start
//! again on the same port.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MemcachedServer {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl MemcachedServer {
    /// Starts one with 64 MiB of memory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with more `memcached` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            child: None,
            extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        server.restart();
        server
    }

    /// `127.0.0.1:port`, as `[memcached] servers` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty) on its port and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("memcached")
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "0",
                "-l",
                "127.0.0.1",
                "-m",
                "64",
            ])
            // memcached refuses to run as root without a user to become.
            .args(["-u", "nobody"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached is installed (`apt-get install memcached`)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .command("version")
                .is_some_and(|reply| reply.starts_with("VERSION"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("memcached on port {} did not answer", self.port);
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `SIGSTOP` (`resume` sends `SIGCONT`): it accepts connections
    /// and answers nothing, like a server that hangs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let sent = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    /// Sends one text-protocol command; its reply (up to `END` for
    /// `stats`, else its one line).
    pub fn command(&self, line: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut reply = String::new();
        loop {
            let mut next = String::new();
            if reader.read_line(&mut next).ok()? == 0 {
                break;
            }
            reply.push_str(&next);
            if !next.starts_with("STAT ") {
                break;
            }
        }
        Some(reply)
    }

    /// The keys it holds, by `lru_crawler metadump all` (one line each),
    /// once its crawler is free.
    pub fn keys(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.metadump() {
                Some(keys) => return keys,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => panic!("memcached's crawler stayed busy"),
            }
        }
    }

    /// `None` while the crawler is busy.
    fn metadump(&self) -> Option<Vec<String>> {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return Some(Vec::new());
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(b"lru_crawler metadump all\r\n");
        let mut keys = Vec::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("BUSY") {
                return None;
            }
            if line == "END" || line.starts_with("ERROR") {
                break;
            }
            if let Some(key) = line.strip_prefix("key=") {
                // Keys come URL-encoded.
                let encoded = key.split(' ').next().unwrap_or_default();
                keys.push(
                    percent_encoding::percent_decode_str(encoded)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
        }
        Some(keys)
    }
}

impl Drop for MemcachedServer {
    fn drop(&mut self) {
        self.kill();
    }
}
