//! The bench's plumbing: the two network namespaces, the nginx that answers for every
//! backend, short commands inside a namespace, and children whose output lines are kept with
//! their arrival time.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lb_perf::bench::procs::{self, BenchError, Result};

/// The backends' address block (AnyIP in the rs namespace).
pub const RS_BLOCK: &str = "10.200.0.0/16";
/// The veth link between the namespaces.
const DIR_ADDR: &str = "10.201.0.1/30";
const RS_ADDR: &str = "10.201.0.2/30";
const RS_GW: &str = "10.201.0.2";

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.into(),
        source,
    }
}

/// Runs a short command (optionally inside `ns`); its stdout, or an error naming it.
pub fn run(ns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(args);
            c
        }
        None => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BenchError::Failed(format!("cannot run {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(BenchError::Failed(format!(
            "{}{} failed ({}): {}",
            ns.map(|n| format!("[{n}] ")).unwrap_or_default(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The two namespaces and the nginx in the rs one; everything is removed on drop.
pub struct Lab {
    pub dir: String,
    pub rs: String,
    work: PathBuf,
    nginx: Option<Watched>,
}

impl Lab {
    /// Creates the namespaces, the veth, the AnyIP block, the sysctls, and starts nginx.
    pub fn up(work: &Path) -> Result<Lab> {
        let pid = std::process::id();
        let mut lab = Lab {
            dir: format!("bh-{pid}-dir"),
            rs: format!("bh-{pid}-rs"),
            work: work.into(),
            nginx: None,
        };
        for ns in [&lab.dir, &lab.rs] {
            run(None, &["ip", "netns", "add", ns])?;
        }
        let (d, r) = (lab.dir.clone(), lab.rs.clone());
        let (vd, vr) = (format!("bh{pid}d"), format!("bh{pid}r"));
        run(
            None,
            &[
                "ip", "link", "add", &vd, "netns", &d, "type", "veth", "peer", "name", &vr,
                "netns", &r,
            ],
        )?;
        for (ns, dev, addr) in [(&d, &vd, DIR_ADDR), (&r, &vr, RS_ADDR)] {
            run(Some(ns), &["ip", "link", "set", "lo", "up"])?;
            run(Some(ns), &["ip", "addr", "add", addr, "dev", dev])?;
            run(Some(ns), &["ip", "link", "set", dev, "up"])?;
        }
        run(
            Some(&r),
            &["ip", "route", "add", "local", RS_BLOCK, "dev", "lo"],
        )?;
        run(Some(&d), &["ip", "route", "add", RS_BLOCK, "via", RS_GW])?;
        // One source address probing thousands of destinations: the 4-tuples differ, but a
        // wide port range and TIME_WAIT reuse keep connect() from hunting for ports.
        for kv in [
            "net.ipv4.ip_local_port_range=1024 65535",
            "net.ipv4.tcp_tw_reuse=1",
        ] {
            run(Some(&d), &["sysctl", "-q", "-w", kv])?;
        }
        // Forwarding on, so a `prohibit` route answers with an ICMP error (ip_error() sends
        // none on an interface that does not forward).
        for kv in [
            "net.ipv4.conf.all.forwarding=1",
            "net.core.somaxconn=65535",
            "net.ipv4.tcp_max_syn_backlog=65535",
        ] {
            run(Some(&r), &["sysctl", "-q", "-w", kv])?;
        }
        lab.start_nginx()?;
        Ok(lab)
    }

    fn start_nginx(&mut self) -> Result<()> {
        let dir = self.work.join("nginx");
        std::fs::create_dir_all(dir.join("tmp")).map_err(io_err(&dir))?;
        let d = dir.display();
        let conf = format!(
            r#"# lb-bench-health: one nginx answers every address of {RS_BLOCK} (AnyIP).
user root;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 16384;
}}
http {{
    default_type text/plain;
    log_format probe '$server_addr $status $connection $connection_requests $msec';
    access_log {d}/access.log probe buffer=4k flush=1s;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 80 default_server backlog=65535;
        location = /healthz {{
            return 200 "ok\n";
        }}
        location / {{
            return 404;
        }}
    }}
}}
"#
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).map_err(io_err(&path))?;
        let p = path.display().to_string();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.rs, "nginx", "-c", &p]);
        let w = Watched::spawn("nginx", &mut c, &dir.join("nginx.out"))?;
        self.nginx = Some(w);
        // Listening when a connect from the dir side succeeds.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = run(
                Some(&self.dir),
                &["bash", "-c", "exec 3<>/dev/tcp/10.200.0.1/80"],
            )
            .is_ok();
            if ok {
                return Ok(());
            }
            if self.nginx.as_mut().is_some_and(|n| n.exited()) || Instant::now() > end {
                return Err(BenchError::Failed(format!(
                    "nginx in {} does not accept on 10.200.0.1:80 within 10 s: {}",
                    self.rs,
                    procs::tail(&dir.join("nginx.out"), 5)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// nginx's pid (for its CPU share) and its access log.
    pub fn nginx_pid(&self) -> Option<u32> {
        self.nginx.as_ref().map(|n| n.child.id())
    }
    pub fn access_log(&self) -> PathBuf {
        self.work.join("nginx/access.log")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut n) = self.nginx.take() {
            n.stop(Duration::from_secs(5));
        }
        for ns in [&self.dir, &self.rs] {
            if let Err(e) = run(None, &["ip", "netns", "del", ns]) {
                eprintln!("lb-bench-health: cleanup: {e}");
            }
        }
    }
}

/// A child whose stdout and stderr lines are kept with their arrival time (and copied to a
/// log file); stopped with SIGTERM, then SIGKILL, on drop.
pub struct Watched {
    name: String,
    pub child: Child,
    pub lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Watched {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Watched> {
        let file = Arc::new(Mutex::new(std::fs::File::create(log).map_err(io_err(log))?));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| BenchError::Spawn {
            what: name.into(),
            cmd: format!("{cmd:?}"),
            source,
        })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out: Option<Box<dyn Read + Send>> = child.stdout.take().map(|o| Box::new(o) as _);
        let err: Option<Box<dyn Read + Send>> = child.stderr.take().map(|o| Box::new(o) as _);
        for r in [out, err].into_iter().flatten() {
            let (lines, file) = (Arc::clone(&lines), Arc::clone(&file));
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(std::result::Result::ok) {
                    let t = Instant::now();
                    if let Ok(mut f) = file.lock() {
                        let _ = writeln!(f, "{l}");
                    }
                    if let Ok(mut v) = lines.lock() {
                        v.push((t, l));
                    }
                }
            });
        }
        Ok(Watched {
            name: name.into(),
            child,
            lines,
        })
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// The first line at or after index `from` containing `pat`, with its time.
    pub fn find(&self, from: usize, pat: &str) -> Option<(usize, Instant)> {
        let v = self.lines.lock().ok()?;
        v.iter()
            .enumerate()
            .skip(from)
            .find(|(_, (_, l))| l.contains(pat))
            .map(|(i, (t, _))| (i, *t))
    }

    pub fn count(&self, from: usize, pat: &str) -> usize {
        self.lines
            .lock()
            .map(|v| v.iter().skip(from).filter(|(_, l)| l.contains(pat)).count())
            .unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.lines.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Waits for a line containing `pat` (from index `from`), at most `timeout`.
    pub fn wait_for(&mut self, from: usize, pat: &str, timeout: Duration) -> Option<Instant> {
        let end = Instant::now() + timeout;
        loop {
            if let Some((_, t)) = self.find(from, pat) {
                return Some(t);
            }
            if Instant::now() > end || self.exited() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status text.
    pub fn stop(&mut self, grace: Duration) -> String {
        if let Ok(Some(s)) = self.child.try_wait() {
            return format!("had exited: {s}");
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "lb-bench-health: {} (pid {}) did not stop within {grace:?}; killing it",
            self.name,
            self.child.id()
        );
        let _ = self.child.kill();
        self.child
            .wait()
            .map(|s| format!("killed: {s}"))
            .unwrap_or_default()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
