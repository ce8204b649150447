//! `paperscope harvest arxiv|hf-daily`: flags to [`crate::harvest`] options, one call,
//! one summary line.

use super::args::{HarvestCommand, HarvestCommon};
use super::UsageError;
use crate::harvest::{arxiv, hf_daily, Report};
use anyhow::{Context, Result};

pub(super) fn harvest(command: HarvestCommand) -> Result<()> {
    let (result, common) = match command {
        HarvestCommand::Arxiv(a) => {
            let c = &a.common;
            let opts = arxiv::Options {
                base_url: base(c, arxiv::DEFAULT_BASE_URL),
                categories: a.categories,
                until: a.until,
                delay: c.delay,
                retries: c.retries,
                timeout: c.timeout,
                backoff: c.backoff,
                ..arxiv::Options::new(&a.set, a.from.as_deref())
            };
            (arxiv::harvest(&opts, &c.out), a.common)
        }
        HarvestCommand::HfDaily(a) => {
            let c = &a.common;
            let opts = hf_daily::Options {
                base_url: base(c, hf_daily::DEFAULT_BASE_URL),
                until: a.until,
                delay: c.delay,
                retries: c.retries,
                timeout: c.timeout,
                backoff: c.backoff,
                ..hf_daily::Options::new(a.date.as_deref().unwrap_or_default())
            };
            (hf_daily::harvest(&opts, &c.out), a.common)
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(e) if e.is_usage() => return Err(UsageError(e.to_string()).into()),
        Err(e) => {
            return Err(e).with_context(|| format!("harvesting into {}", common.out.display()))
        }
    };
    print(&report, common.json)
}

fn base(c: &HarvestCommon, default: &str) -> String {
    c.base_url.clone().unwrap_or_else(|| default.to_string())
}

fn print(r: &Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!(
            "harvested {} records, {} deleted, {} pages, {} requests, {} retries, {}..{} -> {}",
            r.records,
            r.deleted,
            r.pages,
            r.requests,
            r.retries,
            r.from,
            r.until,
            r.out.display()
        );
    }
    Ok(())
}
