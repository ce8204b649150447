//! Where a collection lives: an index directory on this machine ([`crate::index`]) or
//! PostgreSQL + pgvector shards ([`pg::PgStore`]), named by the same command-line
//! argument.
//!
//! An argument that starts with `postgres://` or `postgresql://` is a [`ShardSet`]:
//! a comma-separated list of shards, papers placed on them by a stable hash of their id;
//! each shard may list streaming replicas after `|`, and reads then go to the replicas:
//!
//! ```text
//! postgres://u:pw@a:5432/db|postgres://u:pw@a-replica:5432/db,postgres://u:pw@b:5432/db
//! ```
//!
//! Credentials never leave this module in text: every `Display` of a shard is its
//! `host:port/db`.

pub mod pg;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use tokio_postgres::config::Host;

/// An argument naming a collection that is a PostgreSQL URL list rather than a directory.
pub fn postgres_urls(arg: &Path) -> Option<String> {
    let s = arg.to_str()?;
    (s.starts_with("postgres://") || s.starts_with("postgresql://")).then(|| s.to_string())
}

/// One PostgreSQL server: its connection settings and the redacted name used in every
/// message.
#[derive(Clone)]
pub struct Server {
    pub config: tokio_postgres::Config,
    /// `host:port/db`, never user or password.
    pub name: String,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Server({})", self.name)
    }
}

/// A shard: the primary takes writes, the replicas (if any) take reads.
#[derive(Debug, Clone)]
pub struct Shard {
    pub primary: Server,
    pub replicas: Vec<Server>,
}

/// The shards of one collection, in placement order (the order is part of the placement:
/// list them the same way every time).
#[derive(Debug, Clone)]
pub struct ShardSet {
    pub shards: Vec<Shard>,
}

/// A URL list that does not parse. Says which entry, never what it contained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("PostgreSQL URL {position} of the list is not a valid postgres:// URL (user, password and host are not shown)")]
pub struct UrlError {
    /// 1-based position among all URLs (primaries and replicas) of the argument.
    pub position: usize,
}

impl FromStr for ShardSet {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        let mut position = 0;
        let mut server = |url: &str| -> Result<Server, UrlError> {
            position += 1;
            let err = UrlError { position };
            let url = url.trim();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(err);
            }
            let mut config = tokio_postgres::Config::from_str(url).map_err(|_| err.clone())?;
            let host = match config.get_hosts().first() {
                Some(Host::Tcp(h)) => h.clone(),
                Some(Host::Unix(p)) => p.display().to_string(),
                None => return Err(err),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let db = config.get_dbname().unwrap_or("postgres").to_string();
            config.connect_timeout(std::time::Duration::from_secs(5));
            config.application_name("paperscope");
            Ok(Server {
                config,
                name: format!("{host}:{port}/{db}"),
            })
        };
        let shards = s
            .split(',')
            .map(|shard| {
                let mut urls = shard.split('|');
                let primary = server(urls.next().unwrap_or_default())?;
                let replicas = urls.map(&mut server).collect::<Result<_, _>>()?;
                Ok(Shard { primary, replicas })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ShardSet { shards })
    }
}

impl ShardSet {
    /// The shard that holds paper `id`: xxh3 of the id modulo the shard count, stable
    /// across processes and versions (xxh3 is a fixed function).
    pub fn shard_of(&self, id: &str) -> usize {
        (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % self.shards.len() as u64) as usize
    }
}

impl fmt::Display for ShardSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.shards.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", s.primary)?;
            for r in &s.replicas {
                write!(f, "|{r}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_replicas_parse_and_never_show_credentials() {
        let set: ShardSet = "postgres://me:s3cret@a:5433/db|postgres://me:s3cret@b/db,postgresql://me:s3cret@c:6000/other"
            .parse()
            .unwrap();
        assert_eq!(set.shards.len(), 2);
        assert_eq!(set.shards[0].replicas.len(), 1);
        let shown = format!("{set} {set:?}");
        assert_eq!(set.to_string(), "a:5433/db|b:5432/db,c:6000/other");
        assert!(
            !shown.contains("s3cret") && !shown.contains("me"),
            "{shown}"
        );
        let bad = "postgres://me:s3cret@a/db,http://me:s3cret@b/db"
            .parse::<ShardSet>()
            .unwrap_err();
        assert_eq!(bad, UrlError { position: 2 });
        assert!(!bad.to_string().contains("s3cret"));
    }

    #[test]
    fn placement_is_stable_and_spreads() {
        let set: ShardSet = "postgres://a/db,postgres://b/db".parse().unwrap();
        // Fixed by xxh3: a change here moves every paper to another shard.
        assert_eq!(set.shard_of("2503.13531"), set.shard_of("2503.13531"));
        let on_first = (0..1000)
            .filter(|i| set.shard_of(&format!("p{i}")) == 0)
            .count();
        assert!((400..600).contains(&on_first), "{on_first}");
    }
}
