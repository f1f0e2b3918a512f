//! `bench-client < plan.json > outcomes.json`: the requests of a plan ([`bench_client::Plan`],
//! JSON on stdin) sent as it says; their outcomes as a JSON array on stdout, in its order.
//! One thread: the benches pin it to a core of their choosing.

use std::io::{Read, Write};

use anyhow::Context;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the plan from stdin")?;
    let plan: bench_client::Plan =
        serde_json::from_str(&input).context("the plan on stdin (see bench_client::Plan)")?;
    let outcomes = bench_client::run(plan).await;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &outcomes)?;
    writeln!(out)?;
    Ok(())
}
