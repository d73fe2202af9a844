//! A real headless Chromium, driven over the WebDriver HTTP protocol through Debian's
//! `chromedriver` (`scripts/test.sh` installs `chromium` and `chromium-driver` when
//! they are missing).
//!
//! chromedriver runs in a process group of its own, with the browsers it starts; the
//! guard kills the whole group when dropped, so a failing test leaves no Chromium
//! behind.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The W3C key for an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session; the driver and its browsers die with it.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    _profile: tempfile::TempDir,
}

/// A found element's reference.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless session with
    /// a fresh profile.
    pub async fn start() -> Browser {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: `apt-get install chromium chromium-driver` \
                 (scripts/test.sh does it)"
            );
        }
        let port = super::free_port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver")
        };
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .http
                .get(format!("{base}/status"))
                .send()
                .await
                .is_ok();
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--window-size=1400,1000", "--no-first-run",
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ],
            },
        }}});
        let answer = browser
            .call("POST", &format!("{base}/session"), Some(capabilities))
            .await;
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session in {answer}"));
        browser.session = format!("{base}/session/{id}");
        browser
    }

    /// One WebDriver command: its `value`, or a panic with the driver's error.
    async fn call(&self, method: &str, url: &str, body: Option<Value>) -> Value {
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or(json!({})).to_string()),
        };
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let text = response.text().await.expect("an answer");
        let answer: Value = serde_json::from_str(&text).expect("a JSON answer");
        assert!(
            status.is_success(),
            "WebDriver {method} {url}: {status} {answer}"
        );
        answer["value"].clone()
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The address the browser is at now.
    pub async fn url(&self) -> String {
        let url = self.command("GET", "/url", None).await;
        url.as_str().unwrap_or_default().to_string()
    }

    /// The first element matching `css`, waiting for it up to 10 s.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = self.try_find(css).await {
                return found;
            }
            if Instant::now() > deadline {
                let source = self.command("GET", "/source", None).await;
                panic!(
                    "no element {css:?} within 10 s at {}:\n{}",
                    self.url().await,
                    source.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The elements matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .command(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .map(|all| all.iter().filter_map(element).collect())
            .unwrap_or_default()
    }

    async fn try_find(&self, css: &str) -> Option<Element> {
        self.find_all(css).await.into_iter().next()
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        let path = format!("/element/{}/value", element.0);
        self.command("POST", &path, Some(json!({ "text": text })))
            .await;
    }

    /// Empties a text field.
    pub async fn clear(&self, element: &Element) {
        let path = format!("/element/{}/clear", element.0);
        self.command("POST", &path, None).await;
    }

    pub async fn click(&self, element: &Element) {
        let path = format!("/element/{}/click", element.0);
        self.command("POST", &path, None).await;
    }

    /// An element's rendered text.
    pub async fn text(&self, element: &Element) -> String {
        let path = format!("/element/{}/text", element.0);
        let text = self.command("GET", &path, None).await;
        text.as_str().unwrap_or_default().to_string()
    }

    /// The text of the first element matching `css` (waiting for it).
    pub async fn text_of(&self, css: &str) -> String {
        let found = self.find(css).await;
        self.text(&found).await
    }

    /// An attribute of the first element matching `css` (waiting for it).
    pub async fn attribute_of(&self, css: &str, name: &str) -> Option<String> {
        let found = self.find(css).await;
        let path = format!("/element/{}/attribute/{name}", found.0);
        let value = self.command("GET", &path, None).await;
        value.as_str().map(str::to_string)
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.command("POST", "/execute/sync", Some(body)).await
    }

    /// Waits (up to 20 s) until `script` returns true in the page.
    pub async fn wait_until(&self, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.execute(script, vec![]).await == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "never true: {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes the window `width` × `height` CSS pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        let rect = json!({ "width": width, "height": height });
        self.command("POST", "/window/rect", Some(rect)).await;
    }

    /// A PNG of the whole window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.command("GET", "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 PNG"))
            .expect("valid base64")
    }

    /// Every URL the page has loaded or fetched since it was navigated to, itself
    /// included.
    pub async fn urls_seen(&self) -> Vec<String> {
        let seen = self
            .execute(
                "return [location.href].concat(performance.getEntries().map(e => e.name));",
                vec![],
            )
            .await;
        seen.as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the page wrote to the browser's console (and the browser's own errors
    /// about it, such as Content-Security-Policy violations) since the last call.
    pub async fn console(&self) -> Vec<String> {
        let entries = self
            .command("POST", "/se/log", Some(json!({ "type": "browser" })))
            .await;
        entries
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The session's cookies as the browser holds them.
    pub async fn cookies(&self) -> Vec<Value> {
        let cookies = self.command("GET", "/cookie", None).await;
        cookies.as_array().cloned().unwrap_or_default()
    }
}

fn element(value: &Value) -> Option<Element> {
    value[ELEMENT].as_str().map(|id| Element(id.to_string()))
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group of our own child; no memory involved.
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}
