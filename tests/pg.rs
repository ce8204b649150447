//! The PostgreSQL store end to end, with the real binary, model, data and PostgreSQL +
//! pgvector (two shards and a streaming replica started by `scripts/pg-cluster.sh`, which
//! exports `PAPERSCOPE_PG_SHARDS` and `PAPERSCOPE_PG_REPLICA`; `.ci/run` does it).
//! Without them every test says it skipped, and why.
//!
//! Each test works in databases of its own (created fresh on every shard), so the tests
//! run in parallel on one cluster. A shard going down is a TCP relay in front of a real
//! shard that the test closes: its connections drop and new ones are refused, as when the
//! server stops, without stopping a server the other tests use.

mod common;

use common::{arxiv_slice, json, ok, paperscope, seed_file};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The password `scripts/pg-cluster.sh` sets: it must never show in any output.
const PASSWORD: &str = "paperscope-pw";

/// arXiv records of the comparison collection (with the 25 seed papers).
const PAPERS: usize = 2000;

/// The cluster's shard URLs and replica URL, or why the tests skip.
fn cluster() -> Option<(Vec<String>, String)> {
    match (
        std::env::var("PAPERSCOPE_PG_SHARDS"),
        std::env::var("PAPERSCOPE_PG_REPLICA"),
    ) {
        (Ok(s), Ok(r)) => Some((s.split(',').map(str::to_string).collect(), r)),
        _ => {
            eprintln!(
                "SKIPPED: PAPERSCOPE_PG_SHARDS / PAPERSCOPE_PG_REPLICA unset; start a cluster with \
                 `scripts/pg-cluster.sh start DIR` and `eval \"$(scripts/pg-cluster.sh env DIR)\"`"
            );
            None
        }
    }
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh, empty database `db` on the server of `url` (dropped first if a previous run
/// left it).
fn fresh_db(url: &str, db: &str) -> String {
    rt().block_on(async {
        let (client, conn) =
            tokio_postgres::connect(&with_db(url, "postgres"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        // Apart: several statements in one simple query run as one transaction, which
        // DROP DATABASE refuses.
        for sql in [
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            format!("CREATE DATABASE {db}"),
        ] {
            client.batch_execute(&sql).await.unwrap();
        }
    });
    with_db(url, db)
}

/// Fresh databases named `db` on every shard, as one shard list.
fn fresh_shards(shards: &[String], db: &str) -> String {
    shards
        .iter()
        .map(|s| fresh_db(s, db))
        .collect::<Vec<_>>()
        .join(",")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The comparison collection (seed + [`PAPERS`] arXiv records) as a local index, embedded
/// once; a later run of the tests brings the same index up to date without embedding.
fn local_index() -> &'static Path {
    static INDEX: OnceLock<PathBuf> = OnceLock::new();
    INDEX.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pg-local");
        std::fs::create_dir_all(&dir).unwrap();
        let slice = arxiv_slice(&dir, PAPERS);
        let idx = dir.join("idx");
        // --replace: a directory left by a run from another checkout holds the same
        // papers under other file names; it is brought up to date, not refused.
        ok(&[
            "index",
            "--replace",
            "--out",
            s(&idx),
            s(&seed_file()),
            s(&slice),
        ]);
        idx
    })
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {v}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn search(index: &str, mode: &str, query: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "search", "--index", index, "--json", "-k", "10", "--mode", mode,
    ];
    args.extend_from_slice(extra);
    args.push(query);
    ids(&json(&ok(&args)))
}

fn overlap(a: &[String], b: &[String]) -> f64 {
    let a: HashSet<_> = a.iter().collect();
    b.iter().filter(|x| a.contains(x)).count() as f64 / b.len().max(1) as f64
}

const QUERIES: &[&str] = &[
    "emergent misalignment after narrow finetuning",
    "graph neural networks for molecules",
    "retrieval augmented generation hallucination",
    "black hole merger gravitational waves",
    "diffusion models for image editing",
    "reinforcement learning from human feedback",
    "quantum error correction codes",
    "medical image segmentation with transformers",
    "speech recognition for low-resource languages",
    "protein structure prediction",
    "autonomous driving trajectory prediction",
    "large language model reasoning benchmarks",
    "federated learning privacy",
    "superconductivity in twisted bilayer graphene",
    "code generation with language models",
];

#[test]
fn two_shards_agree_with_a_local_index_of_the_same_records() {
    let Some((shards, _)) = cluster() else { return };
    let local = local_index();
    let urls = fresh_shards(&shards, "pstest_agree");
    // The migration path: the local index's records and vectors, nothing embedded.
    let summary = json(&ok(&[
        "index",
        "--out",
        &urls,
        "--from-index",
        s(local),
        "--json",
    ]));
    assert_eq!(summary["papers"], PAPERS + 25, "{summary}");
    assert_eq!(summary["embedded"], 0, "{summary}");
    assert!(!summary.to_string().contains(PASSWORD));
    let local = s(local);
    for (mode, floor) in [("semantic", 0.9), ("hybrid", 0.7)] {
        let mean = QUERIES
            .iter()
            .map(|q| overlap(&search(local, mode, q, &[]), &search(&urls, mode, q, &[])))
            .sum::<f64>()
            / QUERIES.len() as f64;
        eprintln!("{mode}: mean top-10 overlap with the local index {mean:.3}");
        assert!(mean >= floor, "{mode}: overlap {mean:.3} < {floor}");
    }
    // A selective filter (17 papers of 2,025) still fills the page (pgvector's iterative
    // scan: a walk of 128 candidates meets about one of them per shard), with the same
    // papers as the local index's exact scan.
    let filter = ["--category", "q-bio*"];
    let q = "language models";
    let (l, p) = (
        search(local, "semantic", q, &filter),
        search(&urls, "semantic", q, &filter),
    );
    assert_eq!(l.len(), 10, "local: {l:?}");
    assert_eq!(p.len(), 10, "store: {p:?}");
    assert!(overlap(&l, &p) >= 0.9, "{l:?} vs {p:?}");
    // Papers like a paper: its vector comes from its shard.
    let similar = |index: &str| {
        ids(&json(&ok(&[
            "similar", "--index", index, "--json", "-k", "10", "seed-007",
        ])))
    };
    let (l, p) = (similar(local), similar(&urls));
    assert!(!p.contains(&"seed-007".to_string()));
    assert!(overlap(&l, &p) >= 0.9, "{l:?} vs {p:?}");
}

/// Pairs of papers that the two partitions agree on (together in both, or apart in both),
/// over the papers both hold: the Rand index.
fn rand_index(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let topic_of = |r: &serde_json::Value| -> std::collections::HashMap<String, u64> {
        r["topics"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| {
                let id = t["id"].as_u64().unwrap();
                t["papers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |p| (p.as_str().unwrap().to_string(), id))
            })
            .collect()
    };
    let (ta, tb) = (topic_of(a), topic_of(b));
    let common: Vec<&String> = ta.keys().filter(|k| tb.contains_key(*k)).collect();
    let (mut agree, mut pairs) = (0usize, 0usize);
    for (i, x) in common.iter().enumerate() {
        for y in &common[i + 1..] {
            pairs += 1;
            agree += usize::from((ta[*x] == ta[*y]) == (tb[*x] == tb[*y]));
        }
    }
    agree as f64 / pairs.max(1) as f64
}

#[test]
fn topics_and_recommendations_over_shards_match_a_local_index() {
    let Some((shards, _)) = cluster() else { return };
    let local = local_index();
    let urls = fresh_shards(&shards, "pstest_topics");
    ok(&["index", "--out", &urls, "--from-index", s(local)]);
    let local = s(local);
    // Topics stream every shard's papers and vectors: the same selection, and a partition
    // of it as close to the local ones as k-means' local runs (seeds 0-3) are to each
    // other. Not identical: the papers come in another order (k-means starts from other
    // points) and the stored vectors are half precision.
    let topics = |index: &str, seed: &str, extra: &[&str]| {
        let mut args = vec![
            "topics", "--index", index, "--query", "emergent", "--k", "4", "--seed", seed, "--json",
        ];
        args.extend_from_slice(extra);
        json(&ok(&args))
    };
    let p = topics(&urls, "0", &[]);
    let locals: Vec<_> = ["0", "1", "2", "3"]
        .iter()
        .map(|seed| topics(local, seed, &["--no-history"]))
        .collect();
    let selected = p["selection"]["papers"].as_u64().unwrap();
    assert!(selected >= 20, "{}", p["selection"]);
    assert_eq!(
        Some(selected),
        locals[0]["selection"]["papers"].as_u64(),
        "{} vs {}",
        p["selection"],
        locals[0]["selection"]
    );
    let sizes: u64 = p["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["size"].as_u64().unwrap())
        .sum();
    assert_eq!(sizes, selected);
    assert_eq!(p["topics"].as_array().unwrap().len(), 4);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let with_store: Vec<f64> = locals.iter().map(|l| rand_index(l, &p)).collect();
    let among_local: Vec<f64> = (0..locals.len())
        .flat_map(|i| (i + 1..locals.len()).map(move |j| (i, j)))
        .map(|(i, j)| rand_index(&locals[i], &locals[j]))
        .collect();
    let (with_store, among_local) = (mean(&with_store), mean(&among_local));
    eprintln!("topics: Rand index store-local {with_store:.3}, local-local {among_local:.3}");
    assert!(
        with_store >= among_local - 0.08,
        "store-local {with_store:.3} vs local-local {among_local:.3}"
    );

    // The HTTP service: topics and recommendations as over an index directory.
    let server = serve(&urls);
    let (status, body) = get(&format!("{}/v1/topics?q=emergent&k=4", server.base));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["selection"]["papers"].as_u64(),
        Some(selected),
        "{body}"
    );
    // One positive example: Rocchio's query is that paper's vector, so the answer is the
    // paper's similar list.
    let post = |body: serde_json::Value| {
        rt().block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("{}/v1/recommend", server.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                resp.status().as_u16(),
                resp.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    let (status, rec) = post(serde_json::json!({"positive": ["seed-007"], "k": 10}));
    assert_eq!(status, 200, "{rec}");
    let (_, similar) = get(&format!("{}/v1/papers/seed-007/similar?k=10", server.base));
    assert_eq!(ids(&rec), ids(&similar));
    assert!(!ids(&rec).contains(&"seed-007".to_string()));
    let (status, err) = post(serde_json::json!({"positive": ["seed-007", "no-such-paper"]}));
    assert_eq!(status, 404, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-paper"),
        "{err}"
    );
}

#[test]
fn add_replace_and_remove_are_commits() {
    let Some((shards, _)) = cluster() else { return };
    let urls = fresh_shards(&shards, "pstest_living");
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file();
    let first = json(&ok(&["index", "--out", &urls, s(&seed), "--json"]));
    assert_eq!(first["papers"], 25, "{first}");
    assert_eq!(first["added"], 25);
    assert_eq!(first["embedded"], 25);
    // The same file again: nothing new, nothing embedded.
    let again = json(&ok(&["add", "--index", &urls, s(&seed), "--json"]));
    assert_eq!(
        (again["unchanged"].as_u64(), again["embedded"].as_u64()),
        (Some(25), Some(0)),
        "{again}"
    );
    // A changed record replaces the stored one (and only it is embedded again); a
    // deletion record removes one; a new one is added.
    let text = std::fs::read_to_string(&seed).unwrap();
    let mut records: Vec<serde_json::Value> = text.lines().map(json).collect();
    let changed = records.iter_mut().find(|r| r["id"] == "seed-003").unwrap();
    changed["title"] = "Zebrafish lateral line hair cell regeneration".into();
    let changed = changed.clone();
    let mut new = changed.clone();
    new["id"] = "new-001".into();
    let edits = dir.path().join("edits.jsonl");
    std::fs::write(
        &edits,
        format!(
            "{changed}\n{new}\n{}\n",
            serde_json::json!({"id": "seed-010", "deleted": true})
        ),
    )
    .unwrap();
    let add = json(&ok(&["add", "--index", &urls, s(&edits), "--json"]));
    assert_eq!(
        [
            &add["added"],
            &add["replaced"],
            &add["removed"],
            &add["embedded"],
            &add["papers"]
        ],
        [1, 1, 1, 2, 25],
        "{add}"
    );
    let top = search(&urls, "keyword", "zebrafish", &[]);
    assert_eq!(top.len(), 2, "{top:?}");
    assert!(top.contains(&"seed-003".to_string()) && top.contains(&"new-001".to_string()));
    let removed = json(&ok(&[
        "remove", "--index", &urls, "new-001", "nope-1", "--json",
    ]));
    assert_eq!(removed["removed"], 1, "{removed}");
    assert_eq!(removed["not_found"], serde_json::json!(["nope-1"]));
    let out = paperscope(&["similar", "--index", &urls, "new-001"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown paper id: new-001"));
    assert_eq!(search(&urls, "keyword", "zebrafish", &[]), ["seed-003"]);
}

#[test]
fn two_indexers_on_different_files_run_at_once() {
    let Some((shards, _)) = cluster() else { return };
    let urls = fresh_shards(&shards, "pstest_writers");
    let dir = tempfile::tempdir().unwrap();
    let all = arxiv_slice(dir.path(), 120);
    let lines: Vec<String> = std::fs::read_to_string(all)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&a, lines[..60].join("\n")).unwrap();
    std::fs::write(&b, lines[60..].join("\n")).unwrap();
    // Both start on an empty database: both create the schema, one after the other.
    let spawn = |f: &Path| {
        Command::new(env!("CARGO_BIN_EXE_paperscope"))
            .args(["add", "--index", &urls, s(f), "--json"])
            .env("PAPERSCOPE_MODEL", common::model_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (x, y) = (spawn(&a), spawn(&b));
    for child in [x, y] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json(&String::from_utf8_lossy(&out.stdout))["added"], 60);
    }
    let count = json(&ok(&["add", "--index", &urls, s(&a), "--json"]));
    assert_eq!(count["papers"], 120, "{count}");
}

/// A TCP relay to `target` that a test can close (connections dropped, new ones
/// refused) and open again on the same port.
struct Relay {
    port: u16,
    target: String,
    rt: tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    fn new(target: &str) -> Relay {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let port = rt.block_on(async {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let mut r = Relay {
            port,
            target: target.to_string(),
            rt,
            task: None,
        };
        r.open();
        r
    }

    fn open(&mut self) {
        let (port, target) = (self.port, self.target.clone());
        let listener = self.rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.bind(([127, 0, 0, 1], port).into()).unwrap();
            socket.listen(64).unwrap()
        });
        self.task = Some(self.rt.spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    /// Drops the listener and every relayed connection (the JoinSet aborts them).
    fn close(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = self.rt.block_on(t);
        }
    }
}

/// `host:port` of a URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once('@').unwrap().1;
    rest.split_once('/').unwrap().0.to_string()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(urls: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args(["serve", "--index", urls, "--addr", "127.0.0.1:0"])
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        assert!(!line.contains(PASSWORD), "{line}");
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, base }
}

fn get(url: &str) -> (u16, serde_json::Value) {
    let rt = rt();
    rt.block_on(async {
        let resp = reqwest::get(url).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    })
}

#[test]
fn a_shard_that_goes_down_is_named_and_the_server_survives() {
    let Some((shards, _)) = cluster() else { return };
    let one = fresh_db(&shards[0], "pstest_down");
    let two = fresh_db(&shards[1], "pstest_down");
    let mut relay = Relay::new(&host_port(&two));
    let relayed = two.replace(&host_port(&two), &format!("127.0.0.1:{}", relay.port));
    let urls = format!("{one},{relayed}");
    ok(&["index", "--out", &urls, s(&seed_file())]);
    let server = serve(&urls);
    let q = |extra: &str| {
        get(&format!(
            "{}/v1/search?q=emergent+misalignment&k=5{extra}",
            server.base
        ))
    };
    let (status, before) = q("");
    assert_eq!(status, 200, "{before}");
    assert_eq!(ids(&before).len(), 5);

    relay.close();
    let shard = format!("127.0.0.1:{}/pstest_down", relay.port);
    let (status, body) = q("");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "shard_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&shard), "{message}");
    assert!(
        !message.contains(PASSWORD) && !message.contains("paperscope:"),
        "{message}"
    );
    let (status, body) = get(&format!("{}/v1/papers/seed-007/similar?k=3", server.base));
    assert_eq!(status, 503, "{body}");
    // Topics never go partial: a map without a shard's papers would mislead.
    let (status, body) = get(&format!("{}/v1/topics?k=2&allow_partial=true", server.base));
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&shard),
        "{body}"
    );
    // Partial answers, when asked for, say what they lack.
    let (status, partial) = q("&allow_partial=true");
    assert_eq!(status, 200, "{partial}");
    assert_eq!(
        partial["missing_shards"][0]["shard"],
        shard.as_str(),
        "{partial}"
    );
    assert!(!ids(&partial).is_empty());
    // The command line says the same, with exit status 1.
    let out = paperscope(&["search", "--index", &urls, "--mode", "keyword", "emergent"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&shard) && !err.contains(PASSWORD), "{err}");

    // The shard is back: the same server answers in full again.
    relay.open();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, after) = q("");
        if status == 200 {
            assert_eq!(ids(&after), ids(&before));
            break;
        }
        assert!(Instant::now() < deadline, "still failing: {after}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn reads_go_to_the_replica() {
    let Some((shards, replica)) = cluster() else {
        return;
    };
    let primary = fresh_db(&shards[0], "pstest_replica");
    ok(&["index", "--out", &primary, s(&seed_file())]);
    let replica = with_db(&replica, "pstest_replica");
    let expected = search(&primary, "hybrid", "emergent misalignment", &[]);
    // A primary that cannot be reached, with the replica listed: reads still work, so they
    // went to the replica (once it has replayed the writes).
    let down = "postgres://paperscope:paperscope-pw@127.0.0.1:1/pstest_replica";
    let urls = format!("{down}|{replica}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = paperscope(&[
            "search",
            "--index",
            &urls,
            "--json",
            "-k",
            "10",
            "--mode",
            "hybrid",
            "emergent misalignment",
        ]);
        if out.status.success() && ids(&json(&String::from_utf8_lossy(&out.stdout))) == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica reads failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Writes go to the primary, which is down: a clear error naming it.
    let out = paperscope(&["remove", "--index", &urls, "seed-007"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("127.0.0.1:1/pstest_replica") && !err.contains(PASSWORD),
        "{err}"
    );
}
