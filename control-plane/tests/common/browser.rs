//! A real browser for the page's end-to-end tests: Debian's headless Chromium driven over
//! W3C WebDriver by `chromedriver`, with a fake microphone fed from a WAV file.
//!
//! Only the handful of WebDriver commands the tests need (new session, navigate, find and
//! click, execute script — promises awaited —, screenshot, the browser console), spoken with
//! the control plane's own HTTP client. Every wait is bounded and, when it fails, saves a
//! screenshot and the console log under `target/browser-tests/<test>/` before panicking.
//! Chromium comes from `scripts/deps` (packages `chromium`, `chromium-driver`).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A Chromium session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Option<Child>,
    artefacts: PathBuf,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn executable(env: &str, default: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| default.to_owned());
    assert!(
        Path::new(&path).exists(),
        "{path} not found: install Debian's chromium and chromium-driver with scripts/deps (or set {env})"
    );
    path
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose microphone plays `fake_audio` (a WAV
    /// file, looped; Chromium's beep without one). `test` names the artefacts directory.
    pub async fn start(test: &str, fake_audio: Option<&Path>) -> Browser {
        let chromium = executable("CALLWAY_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = executable("CALLWAY_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let artefacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-tests").join(test);
        let _ = std::fs::remove_dir_all(&artefacts);
        std::fs::create_dir_all(&artefacts).unwrap();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", artefacts.join("chromedriver.log").display()))
            // Its own process group, so that Chromium's processes end with it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        // Chromium's audio threads ask for real-time scheduling (SCHED_RR); as root they get it,
        // and with fake devices they can starve everything else on a 2-core machine (the test
        // itself, CI). Without CAP_SYS_NICE the request is refused and they run as normal
        // threads.
        let launcher = profile.path().join("chromium");
        std::fs::write(
            &launcher,
            format!(
                "#!/bin/sh\nexec setpriv --bounding-set -sys_nice --inh-caps -sys_nice {chromium} \"$@\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&launcher, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let profile_dir = profile.path().join("profile");
        // Bounded: a WebDriver call to a Chromium that died must fail, not hang the test.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--autoplay-policy=no-user-gesture-required".to_owned(),
            "--use-fake-ui-for-media-stream".to_owned(),
            "--use-fake-device-for-media-stream".to_owned(),
            format!("--user-data-dir={}", profile_dir.display()),
            "--window-size=420,900".to_owned(),
        ];
        if let Some(wav) = fake_audio {
            args.push(format!("--use-file-for-fake-audio-capture={}", wav.display()));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": launcher, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let r: Value =
            http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {r}"))
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            driver: Some(driver),
            artefacts,
            _profile: profile,
        }
    }

    /// One WebDriver command; its `value` (an error object if it failed).
    async fn raw(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => r.json::<Value>().await.map(|v| v["value"].clone()).unwrap_or(Value::Null),
            Err(e) => json!({"error": "no answer from chromedriver", "message": e.to_string()}),
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let r = json!({"value": self.raw(method, path, body).await});
        if r["value"]["error"].is_string() {
            self.fail(&format!("WebDriver {path}: {}", r["value"])).await;
        }
        r["value"].clone()
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The WebDriver id of the element `css` selects.
    async fn element(&self, css: &str) -> String {
        let el = self
            .command(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
            .await;
        let Some(id) = el[ELEMENT].as_str().map(str::to_owned) else {
            self.fail(&format!("no element {css}: {el}")).await;
        };
        id
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    /// Replaces the text of the field `css` selects with `text`, as typed.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/clear"), Some(json!({}))).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": text})))
            .await;
    }

    /// Presses `key` (a WebDriver key code, e.g. `"\u{E007}"` for Enter) on the element `css`
    /// selects, as a keyboard user would: the element takes the focus first.
    pub async fn press(&self, css: &str, key: &str) {
        let id = self.element(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": key})))
            .await;
    }

    /// Content-Security-Policy violations the browser reported in its console since the last
    /// call of this or [`Browser::console`] (chromedriver hands each entry out once).
    pub async fn csp_violations(&self) -> Vec<String> {
        self.console()
            .await
            .into_iter()
            .filter(|l| l.contains("Content Security Policy") || l.contains("Content-Security-Policy"))
            .collect()
    }

    /// Runs `script` as a function body in the page and returns its value (a promise is
    /// awaited).
    pub async fn eval(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []})))
            .await
    }

    /// Re-runs `script` every 100 ms until it returns something truthy (returned), for at most
    /// `limit`; then fails with `what`.
    pub async fn wait_for(&self, what: &str, limit: Duration, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let v = self.eval(script).await;
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                self.fail(&format!("timed out after {limit:?} waiting for {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `name`.png in the artefacts directory.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.raw(reqwest::Method::GET, "/screenshot", None).await;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_default();
        let path = self.artefacts.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The browser console so far (chromedriver's log endpoint).
    pub async fn console(&self) -> Vec<String> {
        let r: Value = self
            .http
            .post(format!("{}/se/log", self.session))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .map(|r| r.json())
            .unwrap()
            .await
            .unwrap_or(Value::Null);
        r["value"]
            .as_array()
            .map(|a| a.iter().map(|e| format!("{} {}", e["level"], e["message"])).collect())
            .unwrap_or_default()
    }

    /// Saves the screenshot and the console log, then panics with `message`.
    pub async fn fail(&self, message: &str) -> ! {
        eprintln!("browser test failing: {message}");
        let shot = self.screenshot("failure").await;
        let console = self.console().await.join("\n");
        let log = self.artefacts.join("console.log");
        std::fs::write(&log, &console).unwrap();
        panic!("{message}\n(screenshot {}, console log {}):\n{console}", shot.display(), log.display());
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        self.stop_driver();
    }

    /// Ends chromedriver's process group (the driver and the Chromium it started).
    fn stop_driver(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            let group = format!("-{}", driver.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = driver.kill();
            let _ = driver.wait();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver is ours: stop it even when a test panicked (Chromium goes with it).
        self.stop_driver();
    }
}

/// Aborts the test process if it is still alive after `secs` of wall-clock time (a hang guard,
/// not an assertion), so that a wedged browser cannot hold CI.
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    /// Starts the guard for `what`.
    pub fn new(what: &str, secs: u64) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let what = what.to_owned();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(secs))
            {
                eprintln!("watchdog: {what} still running after {secs} s of wall-clock time; aborting");
                std::process::abort();
            }
        });
        Self(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // After a panic the guard stays armed: what hangs then is the teardown.
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}
