//! A real SMTP server: aiosmtpd (Debian's python3-aiosmtpd) storing what it receives
//! in a Maildir.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{free_port, support_file};

/// A running aiosmtpd; killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    /// A plain server that accepts every message.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(&[])
    }

    /// A server that offers STARTTLS with `tls/server.pem` (signed by `tls/ca.pem`) and
    /// refuses mail before it.
    pub fn start_starttls() -> SmtpServer {
        let cert = support_file("tls/server.pem");
        let key = support_file("tls/server.key");
        SmtpServer::start_with(&[
            "--tlscert",
            cert.to_str().expect("utf-8 path"),
            "--tlskey",
            key.to_str().expect("utf-8 path"),
        ])
    }

    /// A server that speaks TLS from the first byte (SMTPS) with `tls/server.pem`.
    pub fn start_implicit_tls() -> SmtpServer {
        let cert = support_file("tls/server.pem");
        let key = support_file("tls/server.key");
        SmtpServer::start_with(&[
            "--smtpscert",
            cert.to_str().expect("utf-8 path"),
            "--smtpskey",
            key.to_str().expect("utf-8 path"),
        ])
    }

    /// A server started with extra aiosmtpd options (e.g. `-s 200` to limit size).
    pub fn start_with(args: &[&str]) -> SmtpServer {
        SmtpServer::spawn(|port, maildir| mailbox(port, maildir, args))
    }

    /// A server that accepts mail only after AUTH as `user` with `password`.
    pub fn start_auth(user: &str, password: &str) -> SmtpServer {
        SmtpServer::spawn(|port, maildir| {
            let mut command = Command::new("/usr/bin/python3");
            command
                .arg(support_file("smtp_auth.py"))
                .arg(port.to_string())
                .arg(maildir)
                .args([user, password]);
            command
        })
    }

    /// A plain server on `port` — for "the server was down and comes up later" tests,
    /// where the port is handed out before anything listens on it.
    pub fn start_on(port: u16) -> SmtpServer {
        SmtpServer::spawn_on(port, |port, maildir| mailbox(port, maildir, &[]))
    }

    fn spawn(command: impl FnOnce(u16, &Path) -> Command) -> SmtpServer {
        SmtpServer::spawn_on(free_port(), command)
    }

    fn spawn_on(port: u16, command: impl FnOnce(u16, &Path) -> Command) -> SmtpServer {
        let maildir = tempfile::tempdir().expect("temp dir");
        // A file, not a pipe: a pipe nobody reads would block the server once full.
        let log = std::fs::File::create(maildir.path().join("server.log")).expect("log file");
        let child = command(port, &maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        let mut server = SmtpServer {
            child,
            port,
            maildir,
        };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.maildir.path().join("server.log"));
                panic!("aiosmtpd exited ({status}): {}", log.unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening"
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// The raw text of every message received so far.
    pub fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail/new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("maildir entry").path()).collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read message"))
            .collect()
    }

    /// Stops the server now (for "the server is down" tests).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// aiosmtpd on `port` with extra `args`, storing what it receives in `maildir`.
fn mailbox(port: u16, maildir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("/usr/bin/python3");
    command
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir);
    command
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of header `name` in a raw message (first occurrence, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\n\n").next()?;
    let mut lines = head.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.eq_ignore_ascii_case(name) {
            let mut value = value.trim().to_string();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

/// The body of a raw message.
pub fn body(message: &str) -> &str {
    message.split_once("\n\n").map_or("", |(_, body)| body)
}

/// An SMTP relay that accepts connections and never says a word (a hung relay, or a
/// firewall that swallows packets after the handshake): every send waits out its
/// timeout. Stops accepting, and drops what it holds, on drop.
pub struct Blackhole {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Blackhole {
    pub async fn start() -> Blackhole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Blackhole { port, task }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An SMTP server on one port that is up for `period`, then down (killed, as a relay
/// that crashes) for `period`, and so on, on a thread of its own, keeping every message
/// each of its lives received. [`Flapping::finish`] leaves it up.
pub struct Flapping {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(SmtpServer, Vec<String>, usize)>,
}

impl Flapping {
    /// Starts it (up) on `port`.
    pub fn start(port: u16, period: Duration) -> Flapping {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        // Sleeps `period`, or less if told to stop; true when told to stop.
        let wait = move || {
            let until = Instant::now() + period;
            while Instant::now() < until {
                if flag.load(Ordering::Relaxed) {
                    return true;
                }
                sleep(Duration::from_millis(50));
            }
            flag.load(Ordering::Relaxed)
        };
        let thread = std::thread::spawn(move || {
            let mut server = SmtpServer::start_on(port);
            let mut earlier = Vec::new();
            let mut outages = 0;
            while !wait() {
                server.stop();
                earlier.extend(server.messages());
                outages += 1;
                // The stopped server's Maildir goes with it; its messages are kept above.
                drop(server);
                wait();
                server = SmtpServer::start_on(port);
            }
            (server, earlier, outages)
        });
        Flapping { stop, thread }
    }

    /// Stops flapping with the server up: the running server, the messages its earlier
    /// lives received, and how many times it was stopped.
    pub fn finish(self) -> (SmtpServer, Vec<String>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the flapping SMTP thread")
    }
}
