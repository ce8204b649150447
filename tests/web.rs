//! The web app, over the real `paperscope serve` on a loopback port and a real index (the
//! seed papers, 300 arXiv records and a few hostile ones): plain HTTP checks of every page,
//! export and header, the CLI's export, and one flow in headless Chromium driven over
//! WebDriver (skipped, saying why, where chromium or chromedriver is not installed; CI
//! installs both).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// arXiv records beside the seed papers.
const ARXIV: usize = 300;

/// Records whose fields hold markup, a `javascript:` url, and an old-style arXiv id.
const HOSTILE: &str = r#"{"id":"evil-1","title":"<script>alert('t')</script> Emergent <b>misalignment</b> of hostile titles","abstract":"An abstract with <img src=x onerror=alert('a')> markup about emergent misalignment in language models & \"quotes\".","authors":["<img src=x onerror=alert('au')>","Eve \"Mallory\" O'Hara"],"categories":["cs.CL","<i>x</i>"],"url":"javascript:alert('u')","published":"2025-01-02"}
{"id":"hep-th/9901001","title":"Emergent gauge fields from an old-style arXiv identifier","abstract":"We study emergent gauge symmetry in lattice models, a test record whose id has a slash.","authors":["A. Physicist"],"categories":["hep-th"],"published":"1999-01-05"}
"#;

const EVIL_TITLE: &str =
    "<script>alert('t')</script> Emergent <b>misalignment</b> of hostile titles";

fn index() -> &'static Path {
    static INDEX: OnceLock<PathBuf> = OnceLock::new();
    INDEX.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-index");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let slice = common::arxiv_slice(&dir, ARXIV);
        let hostile = dir.join("hostile.jsonl");
        std::fs::write(&hostile, HOSTILE).unwrap();
        let idx = dir.join("idx");
        common::ok(&[
            "index",
            "--out",
            idx.to_str().unwrap(),
            common::seed_file().to_str().unwrap(),
            slice.to_str().unwrap(),
            hostile.to_str().unwrap(),
        ]);
        idx
    })
}

/// A running `paperscope serve`, stopped when dropped.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args(["serve", "--index", index().to_str().unwrap()])
        .args(["--addr", "127.0.0.1:0", "--timeout-ms", "120000"])
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = line.split("on ").last().unwrap().trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    // Keep draining its log so that the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for l in stderr.lines().map_while(Result::ok) {
            eprintln!("serve: {l}");
        }
    });
    Server { child, base }
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn fetch(url: &str, accept: Option<&str>) -> Got {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// An HTML page with the strict policy, no inline script or style, nothing fetched
    /// from elsewhere.
    fn assert_page(&self, status: u16, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        assert!(
            self.header("content-type").starts_with("text/html"),
            "{what}"
        );
        let csp = self.header("content-security-policy");
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
        ] {
            assert!(csp.contains(part), "{what}: CSP {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(self.header("x-content-type-options"), "nosniff");
        let b = &self.body;
        assert!(b.starts_with("<!DOCTYPE html>"), "{what}");
        assert_eq!(
            b.matches("<script").count(),
            b.matches("<script src=\"/static/app.js\" defer></script>")
                .count(),
            "{what}: an inline or foreign script"
        );
        assert!(!b.contains(" style="), "{what}: inline style");
        assert!(!b.contains("<style"), "{what}: inline style");
        for foreign in ["src=\"http", "src=\"//", "href=\"//", "@import"] {
            assert!(!b.contains(foreign), "{what}: {foreign}");
        }
        assert!(
            b.len() < 150_000,
            "{what}: page of {} bytes over the 150 KB budget",
            b.len()
        );
    }
}

#[tokio::test]
async fn pages_exports_and_headers_over_http() {
    let server = serve();
    let base = &server.base;
    let get = |path: &str| fetch_owned(format!("{base}{path}"));

    let home = get("/").await;
    home.assert_page(200, "/");
    assert!(home.body.contains("name=\"q\""));
    assert!(home.body.contains("<label"), "labelled controls");

    let r = get("/?q=emergent+misalignment+after+narrow+finetuning").await;
    r.assert_page(200, "results");
    assert!(r.body.contains("href=\"/papers/seed-007\""), "{}", r.body);
    assert!(r.body.contains("Why this result?"));
    assert!(r.body.contains("rel=\"next\""), "pages");
    assert!(r.body.contains("/export?q=emergent+misalignment"));
    // The hostile record is found, and its title renders as text.
    assert!(escaped(&r.body, "<script>alert("), "{}", r.body);
    assert!(!r.body.contains("<script>alert"));
    assert!(!r.body.contains("<b>misalignment"));
    assert!(!r.body.contains("<img src=x"));

    let why = get("/?q=emergent+misalignment&explain=1").await;
    why.assert_page(200, "explained results");
    assert!(why.body.contains("Closest sentence"), "{}", why.body);

    let newest = get("/?q=emergent&sort=newest&mode=keyword").await;
    newest.assert_page(200, "newest");
    let dates: Vec<&str> = newest
        .body
        .split("<span class=\"date\">")
        .skip(1)
        .map(|s| &s[..10])
        .collect();
    assert!(
        dates.len() > 3 && dates.windows(2).all(|w| w[0] >= w[1]),
        "{dates:?}"
    );

    // Mistakes are shown on the form, with a 400.
    for (query, says) in [
        ("/?q=x&from=2025-13", "YYYY-MM-DD"),
        ("/?q=x&mode=bogus", "unknown mode"),
        ("/?q=x&sort=oldest", "unknown sort"),
        ("/?q=x&page=0", "page must be"),
        ("/?q=x&page=5000", "offset must be at most"),
        ("/?q=x&from=2025&to=2024", "is after"),
    ] {
        let r = get(query).await;
        r.assert_page(400, query);
        assert!(r.body.contains(says), "{query}: {}", r.body);
        assert!(r.body.contains("role=\"alert\""), "{query}");
    }
    let none = get("/?q=zzzqqqxxv&mode=keyword").await;
    none.assert_page(200, "empty");
    assert!(none.body.contains("No papers found"), "{}", none.body);

    // The paper page: escaped fields, no link from a `javascript:` url, author searches,
    // category filters, similar papers with shared terms, the BibTeX entry.
    let evil = get("/papers/evil-1").await;
    evil.assert_page(200, "hostile paper");
    for raw in [
        "<script>alert",
        "<img src=x",
        "<b>misalignment",
        "<i>x</i>",
        "javascript:",
    ] {
        assert!(!evil.body.contains(raw), "{raw} in {}", evil.body);
    }
    assert!(
        escaped(&evil.body, "<img src=x onerror=alert("),
        "{}",
        evil.body
    );
    assert!(evil.body.contains("Similar papers"));
    let p = get("/papers/seed-007").await;
    p.assert_page(200, "paper");
    assert!(p.body.contains("@misc{seed-007,"), "{}", p.body);
    assert!(p.body.contains("Shared terms:"), "{}", p.body);
    assert_eq!(
        p.body.matches("class=\"hit\"").count(),
        10,
        "top 10 similar"
    );
    let arxiv = get("/papers/2503.11677").await;
    arxiv.assert_page(200, "arXiv paper");
    assert!(arxiv
        .body
        .contains("href=\"https://arxiv.org/abs/2503.11677\""));
    assert!(arxiv
        .body
        .contains("href=\"https://arxiv.org/pdf/2503.11677\""));
    assert!(
        arxiv
            .body
            .contains("/?q=%22Jungyeon+Park%22&#38;mode=keyword"),
        "author link"
    );
    assert!(arxiv.body.contains("category=cs.HC"), "category link");
    assert!(arxiv.body.contains("eprint        = {2503.11677}"));
    for path in ["/papers/hep-th%2F9901001", "/papers/hep-th/9901001"] {
        let old = get(path).await;
        old.assert_page(200, path);
        assert!(old
            .body
            .contains("href=\"https://arxiv.org/abs/hep-th/9901001\""));
    }
    let missing = get("/papers/no-such-paper").await;
    missing.assert_page(404, "unknown paper");
    assert!(missing.body.contains("unknown paper id: no-such-paper"));

    // The API gets the derived links too; ids that are not arXiv's get none.
    let v = common::json(&get("/v1/papers/2503.11677").await.body);
    assert_eq!(v["url"], "https://arxiv.org/abs/2503.11677");
    let v = common::json(&get("/v1/papers/seed-007").await.body);
    assert!(v["url"].is_null(), "{v}");
    let v = common::json(&get("/v1/papers/evil-1").await.body);
    assert_eq!(
        v["url"], "javascript:alert('u')",
        "kept as given, never linked"
    );

    get("/for-you").await.assert_page(200, "for-you");
    let t = get("/topics?q=emergent&k=4").await;
    t.assert_page(200, "topics");
    assert!(t.body.contains("<svg") && t.body.contains("href=\"#topic-0\""));
    assert!(t.body.contains("Search within this topic"));
    assert!(t.body.contains("href=\"/papers/"));
    let bad = get("/topics?k=0").await;
    bad.assert_page(400, "bad topics");

    // Static files, and HTML or JSON for unknown routes by what the client accepts.
    let js = get("/static/app.js").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    let css = get("/static/app.css").await;
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(
        r.body.len() + js.body.len() + css.body.len() < 150_000,
        "results page with its assets over 150 KB"
    );
    let html404 = fetch(&format!("{base}/nope"), Some("text/html")).await;
    html404.assert_page(404, "unknown route");
    let json404 = fetch(&format!("{base}/nope"), None).await;
    assert_eq!(common::json(&json404.body)["error"]["code"], "not_found");

    // Export: a result list, a list of ids, a topic.
    let bib = get("/export?q=emergent+misalignment&format=bibtex").await;
    assert_eq!(bib.status, 200, "{}", bib.body);
    assert!(bib
        .header("content-type")
        .starts_with("application/x-bibtex"));
    assert!(bib.header("content-disposition").contains("paperscope.bib"));
    assert!(bib.body.starts_with("@misc{"));
    assert!(
        bib.body.matches("@misc{").count() >= 20,
        "up to 100 results"
    );
    let csv = get("/export?ids=seed-007,evil-1,hep-th/9901001&format=csv").await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{}", csv.body);
    assert!(lines[3].contains("https://arxiv.org/pdf/hep-th/9901001"));
    let ris = get("/export?topic=0&q=emergent&k=4&format=ris").await;
    assert_eq!(ris.status, 200, "{}", ris.body);
    assert!(ris.body.starts_with("TY  - UNPB\r\n") && ris.body.ends_with("ER  - \r\n"));
    for (query, status) in [
        ("/export?q=x&format=pdf", 400),
        ("/export?format=csv", 400),
        ("/export?ids=no-such&format=csv", 404),
        ("/export?topic=99&q=emergent&k=4&format=csv", 404),
        ("/export?q=x&from=2025-13&format=csv", 400),
    ] {
        let r = get(query).await;
        r.assert_page(status, query);
    }
}

/// Whether `body` holds `text` with its `<` and `>` escaped, by name or by number.
fn escaped(body: &str, text: &str) -> bool {
    let named = text.replace('<', "&lt;").replace('>', "&gt;");
    let numeric = text.replace('<', "&#60;").replace('>', "&#62;");
    body.contains(&named) || body.contains(&numeric)
}

/// `fetch` for a closure that takes the URL by value.
async fn fetch_owned(url: String) -> Got {
    fetch(&url, None).await
}

#[test]
fn cli_exports_search_results() {
    let idx = index().to_str().unwrap();
    let q = "emergent misalignment after narrow finetuning";
    let bib = common::ok(&["search", "--index", idx, "-k", "3", "--format", "bibtex", q]);
    assert_eq!(bib.matches("@misc{").count(), 3, "{bib}");
    assert!(bib.starts_with("@misc{seed-007,"), "{bib}");
    let csv = common::ok(&["search", "--index", idx, "-k", "3", "--format", "csv", q]);
    assert!(csv.starts_with("id,title,authors,date,categories,url,pdf,abstract\r\nseed-007,"));
    let ris = common::ok(&[
        "similar", "--index", idx, "-k", "2", "--format", "ris", "seed-007",
    ]);
    assert_eq!(ris.matches("ER  - ").count(), 2, "{ris}");
    let bad = common::paperscope(&["search", "--index", idx, "--format", "pdf", q]);
    assert_eq!(bad.status.code(), Some(2));
    let both = common::paperscope(&["search", "--index", idx, "--format", "csv", "--json", q]);
    assert_eq!(both.status.code(), Some(2));
    let newest = common::ok(&[
        "search", "--index", idx, "--sort", "newest", "--mode", "keyword", "emergent",
    ]);
    let dates: Vec<&str> = newest
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{newest}");
}

// ---- the browser ----

/// A free loopback port for chromedriver (which takes a number, not 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn installed(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The browser's console messages of level SEVERE (errors, CSP violations, failed
/// loads) since the last call, through chromedriver's log endpoint.
async fn console_errors(driver: &str, c: &fantoccini::Client) -> Vec<String> {
    let sid = c.session_id().await.unwrap().unwrap();
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{driver}/session/{sid}/se/log"))
        .json(&serde_json::json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no browser log: {r}"))
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn the_flow_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        installed("chromium").or_else(|| installed("chromium-browser")),
        installed("chromedriver"),
    ) else {
        eprintln!("skipped: chromium or chromedriver not installed (apt-get install chromium chromium-driver; .ci/run does)");
        return;
    };
    let server = serve();
    let base = server.base.clone();
    let port = free_port();
    let _driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver = format!("http://127.0.0.1:{port}");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions"]
        }),
    );
    caps.insert(
        "goog:loggingPrefs".into(),
        serde_json::json!({"browser": "ALL"}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let start = Instant::now();
    let c = loop {
        match fantoccini::ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&driver)
            .await
        {
            Ok(c) => break c,
            Err(e) if start.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start: {e}"),
        }
    };
    let result = flow(&c, &base, &driver).await;
    let _ = c.close().await;
    result.unwrap();
}

async fn flow(c: &fantoccini::Client, base: &str, driver: &str) -> Result<(), String> {
    use fantoccini::Locator::Css;
    let wait = Duration::from_secs(60);
    let mut errors = Vec::new();

    // Search from the form.
    c.goto(&format!("{base}/"))
        .await
        .map_err(|e| e.to_string())?;
    let q = c
        .find(Css("input[name=q]"))
        .await
        .map_err(|e| e.to_string())?;
    q.send_keys("emergent misalignment after narrow finetuning")
        .await
        .map_err(|e| e.to_string())?;
    c.find(Css("form.search button[type=submit]"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    c.wait()
        .at_most(wait)
        .for_element(Css("ol.hits li.hit"))
        .await
        .map_err(|e| e.to_string())?;
    let hits = c
        .find_all(Css("ol.hits li.hit"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(hits.len(), 10);
    errors.extend(console_errors(driver, c).await);

    // Open the first result; its similar papers are listed.
    c.find(Css(".hit-title a"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    c.wait()
        .at_most(wait)
        .for_element(Css("article.paper h1"))
        .await
        .map_err(|e| e.to_string())?;
    let first = c.current_url().await.map_err(|e| e.to_string())?;
    assert!(first.path().starts_with("/papers/"), "{first}");
    let similar = c
        .find_all(Css(".similar li.hit"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(similar.len(), 10);
    // Like it, then like its most similar paper.
    let like = Css(".votes button[data-vote='1']");
    c.wait()
        .at_most(wait)
        .for_element(like)
        .await
        .map_err(|e| e.to_string())?;
    c.find(like)
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let pressed = c
        .find(like)
        .await
        .map_err(|e| e.to_string())?
        .attr("aria-pressed")
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(pressed.as_deref(), Some("true"));
    c.find(Css(".similar .hit-title a"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    c.wait()
        .at_most(wait)
        .for_element(like)
        .await
        .map_err(|e| e.to_string())?;
    let second = c.current_url().await.map_err(|e| e.to_string())?;
    assert_ne!(first, second);
    c.find(like)
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    errors.extend(console_errors(driver, c).await);

    // For you: recommendations from the two likes, neither of them among them.
    c.goto(&format!("{base}/for-you"))
        .await
        .map_err(|e| e.to_string())?;
    c.wait()
        .at_most(wait)
        .for_element(Css("#fy-results li.hit"))
        .await
        .map_err(|e| e.to_string())?;
    let recs = c
        .find_all(Css("#fy-results li.hit a"))
        .await
        .map_err(|e| e.to_string())?;
    assert!(recs.len() >= 10, "{} recommendations", recs.len());
    for a in &recs {
        let href = a
            .attr("href")
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        assert!(
            href != first.path() && href != second.path(),
            "a liked paper recommended"
        );
    }
    let votes = c
        .find_all(Css("#fy-votes li"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(votes.len(), 2);
    errors.extend(console_errors(driver, c).await);

    // Topics: click a listed title, land on its paper page.
    c.goto(&format!("{base}/topics?q=emergent&k=4"))
        .await
        .map_err(|e| e.to_string())?;
    c.wait()
        .at_most(wait)
        .for_element(Css(".topic-papers a"))
        .await
        .map_err(|e| e.to_string())?;
    c.find(Css(".legend a"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let title = c
        .find(Css("#topic-0 .topic-papers a"))
        .await
        .map_err(|e| e.to_string())?;
    let want = title.text().await.map_err(|e| e.to_string())?;
    title.click().await.map_err(|e| e.to_string())?;
    let h1 = c
        .wait()
        .at_most(wait)
        .for_element(Css("article.paper h1"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(h1.text().await.map_err(|e| e.to_string())?, want);
    errors.extend(console_errors(driver, c).await);

    // A hostile record renders as text: no element of its markup exists.
    c.goto(&format!("{base}/papers/evil-1"))
        .await
        .map_err(|e| e.to_string())?;
    let h1 = c
        .find(Css("article.paper h1"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(h1.text().await.map_err(|e| e.to_string())?, EVIL_TITLE);
    let injected = c
        .execute(
            "return document.querySelectorAll('main img, main b, main i, main script').length",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(injected, serde_json::json!(0));
    let authors = c
        .find(Css(".paper .authors"))
        .await
        .map_err(|e| e.to_string())?;
    assert!(authors
        .text()
        .await
        .map_err(|e| e.to_string())?
        .contains("<img src=x onerror=alert('au')>"));
    errors.extend(console_errors(driver, c).await);

    assert!(errors.is_empty(), "console errors: {errors:#?}");
    Ok(())
}
