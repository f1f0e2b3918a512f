//! `breakwater ingest PATH... [--user U]`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cache::RedisCache;
use crate::cli::IngestArgs;
use crate::config::Config;
use crate::notes::{IngestReport, Notes, ingest};
use crate::user::UserId;

/// Ingests the files and prints what happened to each kind of file.
#[expect(clippy::print_stdout, reason = "the report is the command's output")]
pub(super) async fn run(config: &Config, args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let store = config.open_notes(None).await?;
    let report = ingest(&*store, &args.user, &args.paths, !args.no_progress)
        .await
        .context("ingest stopped")?;
    store.finish().await.context("finishing the index")?;
    print!("{}", render(&report, &args.user, &config.notes_location()));
    if let Some(url) = &config.redis_url {
        share_generation(url, &*store, &args.user).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Tells the replicas sharing `url` that the user's notes moved on, as a replica does after
/// its own writes: while their notes store is down they answer only from the cache of the
/// newest generation any of them knows, and without this that would be the one before the
/// ingest. The notes are in either way, so a Redis that does not answer is a warning.
async fn share_generation(url: &str, store: &dyn Notes, user: &UserId) {
    let shared = async {
        let generation = store.generation(user).await?;
        RedisCache::new(url)?
            .raise_generation(user, generation)
            .await?;
        anyhow::Ok(())
    };
    if let Err(err) = shared.await {
        let _ = writeln!(
            std::io::stderr(),
            "warning: the notes are in, but REDIS_URL was not told their new generation              ({err:#}); replicas learn it from their next read of the store"
        );
    }
}

fn render(report: &IngestReport, user: &UserId, db: &str) -> String {
    let mut out = format!(
        "ingested into {db} for user {user}: {} added, {} updated, {} unchanged, {} skipped\n",
        report.added,
        report.updated,
        report.unchanged,
        report.skipped.len()
    );
    for (path, reason) in &report.skipped {
        let _ = writeln!(out, "  skipped {}: {reason}", path.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_counts_and_each_skipped_file() {
        let report = IngestReport {
            added: 2,
            updated: 1,
            unchanged: 0,
            skipped: vec![("a.md".into(), "empty file".to_owned())],
        };
        let text = render(&report, &UserId::default(), "notes.db");
        assert!(text.starts_with("ingested into notes.db for user default: 2 added, 1 updated"));
        assert!(text.contains("  skipped a.md: empty file\n"));
    }
}
